import { isRegionHint, type RegionHint } from "../../shared/geo/regions.js";

/**
 * Names of Region shards. Each location hint is served by one or more Region objects: shard 0 is
 * named by the hint alone (`wnam`, the object every deployment before sharding already has, so its
 * tabs and jobs carry on), shard k ≥ 1 is `wnam/k`. Job ids carry the shard as `wnam` or `wnam-k`
 * (a `/` cannot sit in a URL path segment), so GET/stream/DELETE reach the object holding the job
 * without a lookup.
 */
export interface Shard {
  hint: RegionHint;
  k: number;
}

/** Shard numbers stay below this (a split doubles a leaf: depth 8 is 256 shards per hint). */
export const MAX_SHARDS_PER_HINT = 256;

export function shardName({ hint, k }: Shard): string {
  return k === 0 ? hint : `${hint}/${k}`;
}

/** The shard an object name or a job-id token (`wnam`, `wnam/3`, `wnam-3`) stands for; else null. */
export function parseShard(name: string | null | undefined): Shard | null {
  const m = /^([a-z]+)(?:[/-]([1-9][0-9]{0,2}))?$/.exec(name ?? "");
  if (!m || !isRegionHint(m[1] as string)) return null;
  const k = m[2] ? Number(m[2]) : 0;
  if (k >= MAX_SHARDS_PER_HINT) return null;
  return { hint: m[1] as RegionHint, k };
}

/** The part of a job id that names its shard (`wnam`, `wnam-3`). */
export function shardIdToken({ hint, k }: Shard): string {
  return k === 0 ? hint : `${hint}-${k}`;
}
