import { build } from "esbuild";
import type { Plugin } from "vite";

/**
 * Adds the script-tag and SDK bundles to the Vite build (dist/), built with esbuild:
 *   embed.js     — IIFE for `<script src=".../embed.js">` (widget, frame host, SDK as window.Tabgrid)
 *   sdk/tabgrid.js — the ESM SDK
 *   sdk/p2p.js   — the SDK's WebRTC transport with `peerjs`, imported by the SDK only on demand
 *   _headers     — lets pages on other sites import the SDK modules (CORS on /sdk/*)
 */
const here = (file: string) => decodeURIComponent(new URL(file, import.meta.url).pathname);

async function bundle(entry: string, format: "iife" | "esm"): Promise<string> {
  const out = await build({
    entryPoints: [here(entry)],
    bundle: true,
    minify: true,
    format,
    target: "es2020",
    platform: "browser",
    write: false,
    legalComments: "none",
    logLevel: "warning",
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return file.text;
}

export function embedBundles(): Plugin {
  return {
    name: "tabgrid-embed-bundles",
    apply: "build",
    async generateBundle() {
      const [embed, sdk, p2p] = await Promise.all([
        bundle("./embed.ts", "iife"),
        bundle("../sdk/index.ts", "esm"),
        bundle("../direct/client-receiver.ts", "esm"),
      ]);
      this.emitFile({ type: "asset", fileName: "embed.js", source: embed });
      this.emitFile({ type: "asset", fileName: "sdk/tabgrid.js", source: sdk });
      this.emitFile({ type: "asset", fileName: "sdk/p2p.js", source: p2p });
      this.emitFile({
        type: "asset",
        fileName: "_headers",
        source:
          "/sdk/*\n  Access-Control-Allow-Origin: *\n/embed.js\n  Access-Control-Allow-Origin: *\n",
      });
    },
  };
}
