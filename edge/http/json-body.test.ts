import { SELF } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import type { AppContext } from "../env.js";
import { MAX_BODY_BYTES, parseJsonBody } from "./json-body.js";
import { onError } from "./on-error.js";

/** A chunked body (no content-length) producing `total` bytes of `unit`, counting what was read. */
function chunkedBody(prefix: string, unit: string, total: number, suffix: string) {
  const enc = new TextEncoder();
  const chunk = enc.encode(unit.repeat(Math.floor(16_384 / enc.encode(unit).byteLength)));
  let produced = 0;
  let sentPrefix = false;
  let done = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sentPrefix) {
        sentPrefix = true;
        controller.enqueue(enc.encode(prefix));
      } else if (produced < total) {
        produced += chunk.byteLength;
        controller.enqueue(chunk);
      } else if (!done) {
        done = true;
        controller.enqueue(enc.encode(suffix));
        controller.close();
      }
    },
  });
  return { stream, produced: () => produced };
}

const app = new Hono<AppContext>();
app.post("/echo", async (c) => {
  const body = await parseJsonBody(c, z.object({ text: z.string() }));
  return c.json({ chars: body.text.length });
});
app.onError(onError);

function post(body: ReadableStream<Uint8Array> | string, headers: Record<string, string> = {}) {
  return app.request("http://tabgrid.test/echo", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    duplex: "half",
  } as RequestInit);
}

describe("request body limit (bytes, counted while reading)", () => {
  it("accepts a body under the limit whatever its characters", async () => {
    const res = await post(JSON.stringify({ text: "€".repeat(300_000) }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ chars: 300_000 });
  });

  it("refuses a chunked body of 3-byte characters whose string length is under the limit", async () => {
    // 1M × "€": 1,000,000 UTF-16 units (under 1 MiB) but 3 MB on the wire.
    const { stream } = chunkedBody('{"text":"', "€", 3_000_000, '"}');
    const res = await post(stream);
    expect(res.status).toBe(413);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.code).toBe("request_too_large");
  });

  it("stops reading a 20 MB chunked body at the limit", async () => {
    const { stream, produced } = chunkedBody('{"text":"', "a", 20_000_000, '"}');
    const res = await post(stream);
    expect(res.status).toBe(413);
    expect(produced()).toBeLessThan(MAX_BODY_BYTES + 64 * 1024);
  });

  it("does not trust a small content-length", async () => {
    const { stream } = chunkedBody('{"text":"', "€", 3_000_000, '"}');
    const res = await post(stream, { "content-length": "10" });
    expect(res.status).toBe(413);
  });

  it("through the API: a chunked 3 MB chat body of '€' never reaches a tab", async () => {
    const { stream } = chunkedBody(
      '{"model":"euro-model","messages":[{"role":"user","content":"',
      "€",
      3_000_000,
      '"}]}',
    );
    const res = await SELF.fetch("http://tabgrid.test/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).toBe("request_too_large");
  });
});
