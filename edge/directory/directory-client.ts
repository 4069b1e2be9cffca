import type { AppEnv } from "../env.js";
import type { DirectorySnapshot, RoutingView } from "./directory-do.js";

/** How long a Worker isolate reuses a snapshot for routing decisions (not for GET /v1/models). */
const ROUTING_CACHE_MS = 1_000;
let cached: { at: number; snapshot: DirectorySnapshot } | null = null;
let cachedRouting: { at: number; view: RoutingView } | null = null;

export function directoryStub(env: AppEnv) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName("global"));
}

/**
 * The Directory's snapshot. `fresh` reads it now (listings); routing accepts one up to a second
 * old so that spillover decisions do not all funnel through the single global object.
 */
export async function directorySnapshot(env: AppEnv, fresh = false): Promise<DirectorySnapshot> {
  const now = Date.now();
  if (!fresh && cached && now - cached.at < ROUTING_CACHE_MS) return cached.snapshot;
  const snapshot = await directoryStub(env).snapshot();
  cached = { at: now, snapshot };
  return snapshot;
}

/**
 * Summaries and shard layouts for routing tabs and requests to Region shards, up to a second old
 * unless `fresh` (the same bound as the snapshot above). A stale layout only places a tab on a
 * shard it would not have chosen; a shard that split moves such tabs (region/shard-role.ts).
 */
export async function routingView(env: AppEnv, fresh = false): Promise<RoutingView> {
  const now = Date.now();
  if (!fresh && cachedRouting && now - cachedRouting.at < ROUTING_CACHE_MS)
    return cachedRouting.view;
  const view = await directoryStub(env).routing();
  cachedRouting = { at: now, view };
  cached = { at: now, snapshot: view.summaries };
  return view;
}

/** Drop this isolate's cached routing (tests that change a shard layout mid-file). */
export function forgetRoutingCache(): void {
  cached = null;
  cachedRouting = null;
}

/** The key directory shard for a key id (`keys:<first hex digit>`, 16 fixed objects). */
export function keyDirectoryStub(env: AppEnv, keyId: string) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName(`keys:${keyId.slice(0, 1)}`));
}

/** The object that sums HTTP request counts from every isolate (GET /metrics). */
export function metricsDirectoryStub(env: AppEnv) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName("metrics"));
}
