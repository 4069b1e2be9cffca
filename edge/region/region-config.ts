import { readConfig, type Config } from "../config.js";
import type { AppEnv } from "../env.js";

/**
 * Timing and limits of a Region object, from variables with defaults (parsed in edge/config.ts; see
 * docs/limits.md). Tests shorten them through vitest's miniflare bindings; production uses the
 * defaults unless wrangler.toml says otherwise.
 */
export type RegionConfig = Config["region"] & {
  /** Retry-After suggested with 429/503 when the queue is full or no tab frees up. */
  queueRetryAfterMs: number;
};

/** The Region's view of the coordinator configuration (edge/config.ts parses and validates it). */
export function regionConfig(env: AppEnv): RegionConfig {
  return { ...readConfig(env).region, queueRetryAfterMs: 2_000 };
}
