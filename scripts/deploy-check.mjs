// `npm run deploy:check`: what `wrangler deploy` would upload, checked before anything is uploaded.
// Offline, no Cloudflare account needed (CI runs it). docs/deploy.md explains each check.
//
//   node scripts/deploy-check.mjs                  bundle (dry run) + assets + migrations
//   node scripts/deploy-check.mjs --migrations-only [--config wrangler.toml] [--lock deploy/migrations.lock.json]
//   node scripts/deploy-check.mjs --record         after a successful deploy: the lock := wrangler.toml's list
//
// Exit code 0: every check passed; 1: a check failed (each failure is printed with what to do).
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { checkMigrations } from "./deploy-migrations.mjs";

const ROOT = resolve(import.meta.dirname, "..");
const MiB = 1024 * 1024;

/**
 * Workers platform limits, as published at https://developers.cloudflare.com/workers/platform/limits/
 * (read 2026-11-29). Since 2026-09-04 the Worker size limit is 64 MiB *uncompressed* on every plan;
 * the former compressed limits (3 MiB Free / 10 MiB Paid after gzip) were removed
 * (cloudflare/cloudflare-docs#33241, cloudflare/workers-sdk#14001). The gzip size is still printed:
 * it is what a cold isolate has to fetch and parse, so it is worth watching.
 */
const LIMITS = {
  workerBytes: 64 * MiB,
  assetFileBytes: 25 * MiB,
  /** Static asset files per Worker version: 20,000 on Workers Free (100,000 on Paid). */
  assetFiles: 20_000,
};

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : fallback;
};
const configPath = option("--config", join(ROOT, "wrangler.toml"));
const lockPath = option("--lock", join(ROOT, "deploy/migrations.lock.json"));

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};
const failures = [];
const ok = (line) => console.log(`  ok   ${line}`);
const fail = (line) => {
  failures.push(line);
  console.log(`  FAIL ${line}`);
};
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

const { unstable_readConfig } = await import("wrangler");
const config = unstable_readConfig({ config: configPath }, { hideWarnings: true });
const migrations = config.migrations ?? [];

if (flag("--record")) {
  const report = checkMigrations(readLock(), migrations, config.durable_objects?.bindings ?? []);
  if (report.problems.length) {
    for (const p of report.problems) console.log(`  FAIL ${p}`);
    console.log("deploy:check --record: not recording a list that fails the check");
    process.exit(1);
  }
  const lock = JSON.parse(readFileSync(lockPath, "utf8"));
  lock.migrations = migrations;
  writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`recorded ${migrations.length} migrations in ${relative(ROOT, lockPath)}: commit it`);
  process.exit(0);
}

console.log(`deploy:check (${relative(ROOT, configPath) || configPath})`);

// 1. Durable Object migrations against the list last deployed.
console.log("Durable Object migrations");
const report = checkMigrations(readLock(), migrations, config.durable_objects?.bindings ?? []);
for (const p of report.problems) fail(p);
if (!report.problems.length) {
  ok(`${report.deployed} deployed migrations unchanged (${relative(ROOT, lockPath)})`);
  ok(
    report.appended.length
      ? `to apply on the next deploy: ${report.appended.join(", ")}`
      : "nothing new to apply",
  );
  ok(`every Durable Object binding's class is created by a migration`);
}

// 2. The bundle, as `wrangler deploy` would build it (no upload, no account).
if (!flag("--migrations-only")) {
  console.log("Worker bundle (wrangler deploy --dry-run)");
  const assets = config.assets?.directory;
  if (assets && !existsSync(assets)) {
    console.log(`  ..   ${relative(ROOT, assets)} is missing: building the pages (vite build)`);
    const built = spawnSync("vite", ["build", "--logLevel", "warn"], {
      cwd: ROOT,
      stdio: "inherit",
      env,
    });
    if (built.status !== 0) fail("vite build failed (see above)");
  }
  const out = mkdtempSync(join(tmpdir(), "tabgrid-deploy-check-"));
  try {
    const run = spawnSync(
      "wrangler",
      ["deploy", "--dry-run", "--outdir", out, "--config", configPath],
      { cwd: ROOT, env, encoding: "utf8" },
    );
    if (run.status !== 0) {
      fail(`wrangler deploy --dry-run exited ${run.status}:\n${run.stdout}${run.stderr}`);
    } else {
      const uploaded = config.upload_source_maps;
      const files = readdirSync(out).filter(
        (f) => /\.(m?js|cjs|wasm|bin|txt|html|sql)$/.test(f) || (uploaded && f.endsWith(".map")),
      );
      const raw = files.map((f) => readFileSync(join(out, f)));
      const size = raw.reduce((n, b) => n + b.length, 0);
      const gzip = raw.reduce((n, b) => n + gzipSync(b).length, 0);
      const line = `${files.join(", ")}: ${kib(size)} (gzip ${kib(gzip)}); limit ${LIMITS.workerBytes / MiB} MiB uncompressed (${((100 * size) / LIMITS.workerBytes).toFixed(1)}% used)`;
      if (size > LIMITS.workerBytes) fail(line);
      else ok(line);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }

  if (assets && existsSync(assets)) {
    console.log(`Static assets (${relative(ROOT, assets)})`);
    const all = walk(assets);
    const biggest = all.reduce((a, b) => (b.size > a.size ? b : a), { path: "-", size: 0 });
    const countLine = `${all.length} files; limit ${LIMITS.assetFiles.toLocaleString("en")} per version (Workers Free)`;
    if (all.length > LIMITS.assetFiles) fail(countLine);
    else ok(countLine);
    const sizeLine = `largest ${relative(assets, biggest.path)} ${kib(biggest.size)}; limit ${LIMITS.assetFileBytes / MiB} MiB per file`;
    if (biggest.size > LIMITS.assetFileBytes) fail(sizeLine);
    else ok(sizeLine);
  }
}

if (failures.length) {
  console.log(`deploy:check failed: ${failures.length} problem${failures.length > 1 ? "s" : ""}`);
  process.exit(1);
}
console.log("deploy:check passed");

function readLock() {
  if (!existsSync(lockPath)) {
    console.log(`  FAIL no ${relative(ROOT, lockPath)}: the list of migrations last deployed`);
    process.exit(1);
  }
  const lock = JSON.parse(readFileSync(lockPath, "utf8"));
  if (!Array.isArray(lock.migrations)) {
    console.log(`  FAIL ${relative(ROOT, lockPath)} has no "migrations" array`);
    process.exit(1);
  }
  return lock.migrations;
}

function walk(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else out.push({ path, size: statSync(path).size });
  }
  return out;
}
