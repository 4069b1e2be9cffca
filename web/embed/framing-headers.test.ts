import { describe, expect, it } from "vitest";
import { embedBundles } from "./vite-plugin.js";

/**
 * The coordinator serves every page from dist/ as static assets (wrangler.toml: run_worker_first
 * only for /v1/*), so the only response headers those pages get are dist/_headers, which this
 * plugin writes. The full contributor page `/` starts contributing with one click on "Start
 * contributing" (web/ui/consent-panel.ts) with no visibility check, at the page's default GPU
 * share of 100 % — so no other site may frame it (a transparent frame over a decoy turns one click
 * into contributing), nor the status page or the consent window (/consent/). /frame/ must stay
 * frameable by any site (embed.js puts it there) and must not get the pages' X-Frame-Options too.
 */
type Rule = { pattern: RegExp; set: [string, string][]; unset: string[] };

/** dist/_headers as the static-asset server reads it: a path (one `*` splat) then indented lines. */
function parseHeaders(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim() || line.trim().startsWith("#")) continue;
    if (!/^\s/.test(line)) {
      const re = line
        .trim()
        .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*");
      rules.push({ pattern: new RegExp(`^${re}$`), set: [], unset: [] });
    } else if (line.trim().startsWith("!")) {
      rules.at(-1)?.unset.push(line.trim().slice(1).trim().toLowerCase());
    } else {
      const [name, ...rest] = line.trim().split(":");
      rules.at(-1)?.set.push([name!.trim().toLowerCase(), rest.join(":").trim()]);
    }
  }
  return rules;
}

/**
 * The headers a path gets, applied as Cloudflare's asset server does (workers-shared
 * `attachCustomHeaders`, the code wrangler dev runs too): every matching rule in file order; a
 * rule's `! Name` removes that header, then its own headers are set, or appended (comma-joined) to
 * what an earlier rule set.
 */
function headersFor(rules: Rule[], path: string): Map<string, string> {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const r of rules) {
    if (!r.pattern.test(path)) continue;
    for (const k of r.unset) out.delete(k);
    for (const [k, v] of r.set) {
      const before = out.get(k);
      out.set(k, seen.has(k) && before ? `${before}, ${v}` : v);
      seen.add(k);
    }
  }
  return out;
}

const refusesFraming = (h: Map<string, string>) =>
  /^(deny|sameorigin)$/i.test(h.get("x-frame-options") ?? "") ||
  /frame-ancestors\s+('none'|'self')/i.test(h.get("content-security-policy") ?? "");

describe("headers the coordinator sends with its pages (dist/_headers)", () => {
  it("the full contributor page refuses to be framed by another site; /frame/ does not", async () => {
    const files = new Map<string, string>();
    const plugin = embedBundles();
    const hook = plugin.generateBundle as unknown as (this: unknown) => Promise<void>;
    await hook.call({
      emitFile: (f: { fileName: string; source: string }) => files.set(f.fileName, f.source),
    });
    const rules = parseHeaders(files.get("_headers") ?? "");
    for (const path of ["/", "/index.html", "/status/", "/status/index.html", "/consent/"]) {
      expect(refusesFraming(headersFor(rules, path)), `framing protection on ${path}`).toBe(true);
    }
    expect(refusesFraming(headersFor(rules, "/frame/"))).toBe(false);
    for (const path of ["/frame/", "/frame/index.html"]) {
      const headers = headersFor(rules, path);
      expect(headers.get("x-frame-options"), path).toBeUndefined();
      expect(headers.get("content-security-policy"), path).toBe("frame-ancestors *");
    }
    // The SDK stays importable from other sites.
    expect(headersFor(rules, "/sdk/tabgrid.js").get("access-control-allow-origin")).toBe("*");
    expect(headersFor(rules, "/embed.js").get("access-control-allow-origin")).toBe("*");
  }, 60_000);
});
