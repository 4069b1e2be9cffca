/**
 * Paths that need a key (or the anonymous tier): index.ts mounts `authenticate()` on these, and
 * the Worker's first check (early-refusal.ts) answers an address over its failed-authentication
 * limit on them. A pattern ending in `/*` covers everything under it.
 */
export const KEYED_PATHS = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/jobs/*",
  "/v1/credits/link",
  "/v1/credits/key",
] as const;

const exact = new Set<string>(KEYED_PATHS.filter((p) => !p.endsWith("/*")));
const prefixes = KEYED_PATHS.filter((p) => p.endsWith("/*")).map((p) => p.slice(0, -1));

/** Whether `path` (no query) is one of KEYED_PATHS: exact, or strictly under a `/*` pattern. */
export function isKeyedPath(path: string): boolean {
  return exact.has(path) || prefixes.some((p) => path.length > p.length && path.startsWith(p));
}
