/**
 * Sharding settings, from wrangler vars (strings as deployed; docs/scale.md explains the defaults):
 * - REGION_SHARDS: shards per location hint before any split (a power of two; default 1, so
 *   local development and the tests see one Region object per hint as before).
 * - SHARD_SPLIT_STREAMS: a shard with this many jobs streaming splits (default 12: at the ~2 ms of
 *   coordinator CPU per token frame bench:scale measured, 12 streams of 20 tokens/s keep one
 *   single-threaded object near half busy; docs/scale.md has the arithmetic).
 *   "0" turns splitting off (wrangler.toml does, for local development, tests and benchmarks,
 *   whose scripted tabs do not reconnect; a production deploy sets 12 or its own figure).
 * - SHARD_SPLIT_TABS: a shard with this many connected tabs splits (default 4,000), so one
 *   object's tab index, status reports and reconnect storms stay bounded.
 * - SHARD_SPLIT_COOLDOWN_MS: at most one split per shard per this long (default 60 s), so a split
 *   settles (moved tabs reconnect, summaries arrive) before the next is judged.
 */
export interface ShardSettings {
  initialShards: number;
  splitStreams: number;
  splitTabs: number;
  cooldownMs: number;
}

export interface ShardEnv {
  REGION_SHARDS?: string;
  SHARD_SPLIT_STREAMS?: string;
  SHARD_SPLIT_TABS?: string;
  SHARD_SPLIT_COOLDOWN_MS?: string;
}

function positive(raw: string | undefined, fallback: number): number {
  const n = Number(raw);
  return raw !== undefined && raw !== "" && Number.isFinite(n) && n >= 1 ? Math.floor(n) : fallback;
}

export function shardSettings(env: ShardEnv): ShardSettings {
  const off = env.SHARD_SPLIT_STREAMS === "0";
  return {
    initialShards: positive(env.REGION_SHARDS, 1),
    splitStreams: off ? Infinity : positive(env.SHARD_SPLIT_STREAMS, 12),
    splitTabs: off ? Infinity : positive(env.SHARD_SPLIT_TABS, 4000),
    cooldownMs: positive(env.SHARD_SPLIT_COOLDOWN_MS, 60_000),
  };
}
