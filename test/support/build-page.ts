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

export async function bundleTestEngineWorker(): Promise<string> {
  return bundleWorker("test/support/test-engine-worker.ts");
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
