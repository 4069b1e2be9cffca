// `npm run models:add -- <dir-or-url> [options]`: put a WebLLM model's files in the coordinator's
// WEIGHTS bucket and list it in the bucket's catalog.json, so that GET /v1/catalog offers it with
// URLs on the coordinator's own origin (edge/api/weights.ts; docs/deploy.md: Self-hosted models).
//
//   <dir>   a folder with mlc-chat-config.json, ndarray-cache.json or tensor-cache.json, the shards
//           it lists, the tokenizer files the config names, and one compiled library (*.wasm)
//   <url>   a Hugging Face style model repository (…/resolve/main/ is added when missing); the
//           library is then given with --lib <url>
//
// Options:
//   --id <model_id>     catalog id (default: the folder's or repository's name)
//   --lib <path|url>    the model library (default: the one *.wasm in <dir>)
//   --vram <MB>         vram_required_MB (default: an estimate, the weights' bytes plus 25%)
//   --persist-to <dir>  local state folder of `npm start` / wrangler dev (default: .state)
//   --remote            the deployed bucket instead (wrangler r2 object put --remote; needs login)
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  openAsBlob,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const MANIFESTS = ["tensor-cache.json", "ndarray-cache.json"];
const TYPES = {
  json: "application/json",
  wasm: "application/wasm",
  txt: "text/plain; charset=utf-8",
};
const typeOf = (name) => TYPES[name.split(".").pop()] ?? "application/octet-stream";

function fail(message) {
  console.error(`models:add: ${message}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (!v || v.startsWith("--")) fail(`${name} needs a value`);
  args.splice(i, 2);
  return v;
};
const flag = (name) => {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};
const id = opt("--id");
const lib = opt("--lib");
const vram = opt("--vram");
const persistTo = resolve(opt("--persist-to") ?? join(ROOT, ".state"));
const remote = flag("--remote");
const source = args[0];
if (!source || args.length > 1)
  fail(
    "usage: npm run models:add -- <dir-or-url> [--id ID] [--lib PATH|URL] [--vram MB] [--persist-to DIR | --remote]",
  );

const isUrl = /^https?:\/\//.test(source);

/** Where each file comes from: a local path or a URL. */
async function readSource() {
  if (isUrl) {
    let base = source.endsWith("/") ? source : `${source}/`;
    if (!/\/resolve\/[^/]+\/$/.test(base)) base += "resolve/main/";
    const name = id ?? new URL(base).pathname.split("/").filter(Boolean).at(-3);
    if (!lib) fail("a repository URL needs --lib <url of the model library .wasm>");
    const getJson = async (file) => {
      const res = await fetch(new URL(file, base));
      return res.ok ? res.json() : null;
    };
    const config = await getJson("mlc-chat-config.json");
    if (!config) fail(`no mlc-chat-config.json at ${base}`);
    let manifest = null;
    let manifestName = null;
    for (const m of MANIFESTS) {
      manifest = await getJson(m);
      if (manifest) {
        manifestName = m;
        break;
      }
    }
    if (!manifest) fail(`neither ${MANIFESTS.join(" nor ")} at ${base}`);
    return {
      name,
      config,
      manifest,
      manifestName,
      from: (file) => new URL(file, base).href,
      libFrom: lib,
    };
  }
  const dir = resolve(source);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`${dir} is not a folder`);
  const read = (file) => JSON.parse(readFileSync(join(dir, file), "utf8"));
  if (!existsSync(join(dir, "mlc-chat-config.json"))) fail(`no mlc-chat-config.json in ${dir}`);
  const manifestName = MANIFESTS.find((m) => existsSync(join(dir, m)));
  if (!manifestName) fail(`neither ${MANIFESTS.join(" nor ")} in ${dir}`);
  let libPath = lib;
  if (!libPath) {
    const wasm = readdirSync(dir).filter((f) => f.endsWith(".wasm"));
    if (wasm.length !== 1)
      fail(`expected one .wasm model library in ${dir}, found ${wasm.length} (use --lib)`);
    libPath = join(dir, wasm[0]);
  }
  return {
    name: id ?? basename(dir),
    config: read("mlc-chat-config.json"),
    manifest: read(manifestName),
    manifestName,
    from: (file) => join(dir, file),
    libFrom: resolve(libPath),
  };
}

const src = await readSource();
if (!NAME.test(src.name))
  fail(`model id ${JSON.stringify(src.name)}: letters, digits, . _ - only (use --id)`);
const libName = basename(isUrl ? new URL(src.libFrom).pathname : src.libFrom);
if (!NAME.test(libName) || !libName.endsWith(".wasm"))
  fail(`library name ${libName}: must be a .wasm file name`);

// Every file WebLLM reads: config, tokenizer files, the tensor manifest (under both names: WebLLM
// 0.2.80+ reads tensor-cache.json, older ones ndarray-cache.json) and each shard it lists.
const shards = [...new Set((src.manifest.records ?? []).map((r) => r.dataPath))];
if (!shards.length) fail(`${src.manifestName} lists no shards`);
const tokenizer = src.config.tokenizer_files ?? [];
const files = ["mlc-chat-config.json", src.manifestName, ...tokenizer, ...shards];
for (const f of files) if (!NAME.test(f)) fail(`file name ${f} is not a plain file name`);
const uploads = files.map((f) => ({
  key: `models/${src.name}/${f}`,
  from: src.from(f),
  type: typeOf(f),
}));
const other = MANIFESTS.find((m) => m !== src.manifestName);
uploads.push({
  key: `models/${src.name}/${other}`,
  from: src.from(src.manifestName),
  type: typeOf(other),
});
uploads.push({
  key: `models/${src.name}/lib/${libName}`,
  from: src.libFrom,
  type: "application/wasm",
});
if (!isUrl) for (const u of uploads) if (!existsSync(u.from)) fail(`missing ${u.from}`);

const paramBytes =
  src.manifest.metadata?.ParamBytes ??
  src.manifest.records.reduce((n, r) => n + (r.nbytes ?? 0), 0);
const quant = String(src.config.quantization ?? "");
const record = {
  model_id: src.name,
  library: libName,
  vram_required_MB: vram ? Number(vram) : Math.ceil((paramBytes * 1.25) / 2 ** 20),
  low_resource_required: paramBytes < 2 ** 30,
  ...(/f16/.test(quant) ? { required_features: ["shader-f16"] } : {}),
  ...(src.config.context_window_size > 0
    ? { overrides: { context_window_size: src.config.context_window_size } }
    : {}),
};
if (!(record.vram_required_MB > 0)) fail("--vram must be a positive number of MB");

async function body(from) {
  if (!isUrl) return openAsBlob(from);
  const res = await fetch(from);
  if (!res.ok) fail(`${from}: HTTP ${res.status}`);
  return res.blob();
}

let bytes = 0;
const t0 = performance.now();
if (remote) {
  // The deployed bucket, through wrangler's own upload (needs `wrangler login`).
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig(
    { config: join(ROOT, "wrangler.toml") },
    { hideWarnings: true },
  );
  const bucket = config.r2_buckets?.find((b) => b.binding === "WEIGHTS")?.bucket_name;
  if (!bucket) fail("wrangler.toml binds no WEIGHTS bucket");
  const tmp = mkdtempSync(join(tmpdir(), "tabgrid-models-add-"));
  const put = (key, file, type) => {
    const run = spawnSync(
      "wrangler",
      [
        "r2",
        "object",
        "put",
        `${bucket}/${key}`,
        "--file",
        file,
        "--content-type",
        type,
        "--remote",
      ],
      { stdio: "inherit", cwd: ROOT },
    );
    if (run.status !== 0) fail(`upload of ${key} failed`);
  };
  try {
    for (const u of uploads) {
      let file = u.from;
      if (isUrl) {
        file = join(tmp, "file");
        writeFileSync(file, Buffer.from(await (await body(u.from)).arrayBuffer()));
      }
      bytes += statSync(file).size;
      put(u.key, file, u.type);
    }
    const got = spawnSync(
      "wrangler",
      ["r2", "object", "get", `${bucket}/catalog.json`, "--pipe", "--remote"],
      { cwd: ROOT, encoding: "utf8" },
    );
    const catalog = merge(got.status === 0 ? got.stdout : "");
    writeFileSync(join(tmp, "catalog.json"), JSON.stringify(catalog, null, 2));
    put("catalog.json", join(tmp, "catalog.json"), "application/json");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  // The local bucket `npm start` (wrangler dev --persist-to) reads, through wrangler's local R2.
  const { getPlatformProxy } = await import("wrangler");
  const proxy = await getPlatformProxy({
    configPath: join(ROOT, "wrangler.toml"),
    persist: { path: join(persistTo, "v3") },
  });
  try {
    const bucket = proxy.env.WEIGHTS;
    if (!bucket) fail("wrangler.toml binds no WEIGHTS bucket");
    for (const u of uploads) {
      const blob = await body(u.from);
      await bucket.put(u.key, blob, { httpMetadata: { contentType: u.type } });
      const head = await bucket.head(u.key);
      if (!head || head.size !== blob.size)
        fail(`${u.key}: stored ${head?.size} bytes of ${blob.size}`);
      bytes += blob.size;
    }
    const old = await bucket.get("catalog.json");
    const catalog = merge(old ? await old.text() : "");
    await bucket.put("catalog.json", JSON.stringify(catalog, null, 2), {
      httpMetadata: { contentType: "application/json" },
    });
  } finally {
    await proxy.dispose();
  }
}

/** catalog.json with this model's record replacing any earlier one of the same id. */
function merge(text) {
  let list = [];
  try {
    list = text ? JSON.parse(text) : [];
  } catch {
    fail("the bucket's catalog.json is not JSON; fix or delete it first");
  }
  if (!Array.isArray(list)) fail("the bucket's catalog.json is not a list");
  return [...list.filter((m) => m.model_id !== record.model_id), record];
}

console.log(
  `models:add: ${src.name}: ${uploads.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB, into ${remote ? "the deployed WEIGHTS bucket" : `the local WEIGHTS bucket (${persistTo})`} in ${((performance.now() - t0) / 1000).toFixed(1)} s
  catalog record: ${JSON.stringify(record)}
  served at /v1/weights/${src.name}/resolve/main/<file> and /v1/weights/${src.name}/lib/${libName}; listed by GET /v1/catalog`,
);
