import { resolve } from "node:path";
import { build as esbuild } from "esbuild";
import { build as viteBuild } from "vite";

/**
 * Build what the browser test serves: the real contributor page (vite build into dist/, which
 * wrangler dev serves as static assets) and the test Worker bundle (the product's comlink host with
 * the deterministic engine), which the test routes in place of assets/engine-worker.js.
 */
const ROOT = resolve(import.meta.dirname, "../..");

export async function buildContributorPage(): Promise<void> {
  // `npm test` builds dist/ once before any project starts (workerd needs the folder, and a
  // rebuild while other files' servers run would empty it under them).
  if (process.env.TABGRID_PAGE_BUILT === "1") return;
  await viteBuild({ configFile: resolve(ROOT, "vite.config.ts"), logLevel: "warn" });
}

/** The test engine Workers a browser test can route in place of assets/engine-worker.js. */
export const ENGINE_WORKERS = {
  /** The deterministic engine (test/support/deterministic-engine.ts). */
  deterministic: "test/support/test-engine-worker.ts",
  /** The paced engine on a pretend 1024 MB GPU, paced over a BroadcastChannel. */
  paced: "test/support/paced-test-engine-worker.ts",
  /** The deterministic engine holding a real WebGPU device, with device-loss and crash hooks. */
  control: "test/support/control-test-engine-worker.ts",
} as const;
export type EngineWorker = keyof typeof ENGINE_WORKERS;

export async function bundleTestEngineWorker(): Promise<string> {
  return bundleWorker(ENGINE_WORKERS.deterministic);
}

/** Every test engine Worker bundled at once (the browser project's global setup does this once). */
export async function bundleEngineWorkers(): Promise<Record<EngineWorker, string>> {
  const names = Object.keys(ENGINE_WORKERS) as EngineWorker[];
  const texts = await Promise.all(names.map((n) => bundleWorker(ENGINE_WORKERS[n])));
  return Object.fromEntries(names.map((n, i) => [n, texts[i]!])) as Record<EngineWorker, string>;
}

/** Bundle a test Worker entry (path relative to the repository root) for routing. */
export async function bundleWorker(entry: string): Promise<string> {
  const out = await esbuild({
    entryPoints: [resolve(ROOT, entry)],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error("esbuild produced no output for the test engine worker");
  return file.text;
}
