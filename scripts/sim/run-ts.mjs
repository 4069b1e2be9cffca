// Runs a TypeScript script (bench:match, bench:geo) under Node: bundles it with esbuild into
// node_modules/.cache so the `.js` import suffixes used across shared/ resolve to their `.ts`
// sources (Node's own type stripping does not rewrite them), then imports the bundle.
// Usage: node scripts/sim/run-ts.mjs scripts/bench-match.ts [--flags…]
import { build } from "esbuild";
import { mkdirSync } from "node:fs";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const entry = process.argv[2];
if (!entry) {
  console.error("usage: node scripts/sim/run-ts.mjs <script.ts> [args…]");
  process.exit(2);
}
const outDir = resolve("node_modules/.cache/tabgrid-scripts");
mkdirSync(outDir, { recursive: true });
const outfile = resolve(outDir, basename(entry).replace(/\.ts$/, ".mjs"));
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  packages: "external",
  logLevel: "warning",
});
// The script reads its own flags from process.argv after its path, as if run directly.
process.argv.splice(1, 1);
await import(pathToFileURL(outfile).href);
