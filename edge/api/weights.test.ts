import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { forgetHostedCatalog } from "../model-catalog.js";

/**
 * /v1/weights in workerd with its R2 binding (test/integration/hosted-weights.test.ts runs the
 * real model through `npm run models:add` and wrangler dev): byte ranges as RFC 9110 defines them,
 * HEAD, and the catalog entry's URLs on the request's origin.
 */
const ORIGIN = "http://tabgrid.test";
const BYTES = new Uint8Array(1000).map((_, i) => i % 251);
const URL_ = `${ORIGIN}/v1/weights/range-model/resolve/main/params_shard_0.bin`;

beforeAll(async () => {
  await appEnv.WEIGHTS!.put("models/range-model/params_shard_0.bin", BYTES);
  await appEnv.WEIGHTS!.put(
    "catalog.json",
    JSON.stringify([
      { model_id: "range-model", library: "range-model.wasm", vram_required_MB: 10 },
    ]),
  );
  forgetHostedCatalog();
});

const get = (range?: string, method = "GET") =>
  SELF.fetch(URL_, { method, headers: range ? { range } : {} });

describe("GET /v1/weights", () => {
  it("serves a whole file and one range of it", async () => {
    const whole = await get();
    expect(whole.status).toBe(200);
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(BYTES);
    for (const [range, start, end] of [
      ["bytes=0-99", 0, 99],
      ["bytes=990-", 990, 999],
      ["bytes=-10", 990, 999],
      ["bytes=500-5000", 500, 999],
    ] as const) {
      const res = await get(range);
      expect(res.status, range).toBe(206);
      expect(res.headers.get("content-range"), range).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers.get("content-length"), range).toBe(String(end - start + 1));
      expect(new Uint8Array(await res.arrayBuffer()), range).toEqual(BYTES.slice(start, end + 1));
    }
    const past = await get("bytes=1000-");
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */1000");
    await past.arrayBuffer();
    const head = await get(undefined, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("1000");
  });

  it("lists hosted models in /v1/catalog on the request's origin", async () => {
    const body = (await (await SELF.fetch(`${ORIGIN}/v1/catalog`)).json()) as {
      data: { model_id: string; model: string; model_lib: string }[];
    };
    expect(body.data.find((m) => m.model_id === "range-model")).toMatchObject({
      model: `${ORIGIN}/v1/weights/range-model`,
      model_lib: `${ORIGIN}/v1/weights/range-model/lib/range-model.wasm`,
    });
  });
});
