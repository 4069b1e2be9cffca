import { build } from "esbuild";
import type { Plugin } from "vite";

/**
 * Adds the script-tag and SDK bundles to the Vite build (dist/), built with esbuild:
 *   embed.js     — IIFE for `<script src=".../embed.js">` (widget, frame host, SDK as window.Tabgrid)
 *   sdk/tabgrid.js — the ESM SDK
 *   sdk/p2p.js   — the SDK's WebRTC transport with `peerjs`, imported by the SDK only on demand
 *   _headers     — lets pages on other sites import the SDK modules (CORS on /sdk/*), and keeps
 *                  other sites from framing the coordinator's pages, except /frame/ (FRAMING)
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

/**
 * Response headers of the static pages (dist/_headers; wrangler.toml runs the Worker first only for
 * /v1/*, so these are the only headers the pages get). Rules stack as Cloudflare's asset server
 * applies them: every matching rule in file order, `! Name` removes what an earlier rule set.
 * - Every page refuses framing by another site: a transparent frame over a decoy would turn one
 *   click on the contributor page's "Start contributing" (GPU share 100 % by default) into
 *   contributing. That covers `/`, `/status/` and the consent window `/consent/`.
 * - `/frame/` is the embed frame, placed on other sites by embed.js: any site may frame it (its
 *   consent question guards itself, web/frame/consent.ts), so it loses both headers again and says
 *   so explicitly (no X-Frame-Options at all: SAMEORIGIN would stop it on every host site).
 */
export const FRAMING = `/*
  Content-Security-Policy: frame-ancestors 'self'
  X-Frame-Options: SAMEORIGIN
/frame/*
  ! Content-Security-Policy
  ! X-Frame-Options
  Content-Security-Policy: frame-ancestors *
`;

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
        source: `${FRAMING}/sdk/*\n  Access-Control-Allow-Origin: *\n/embed.js\n  Access-Control-Allow-Origin: *\n`,
      });
    },
  };
}
