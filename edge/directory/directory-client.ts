import { waitUntil } from "cloudflare:workers";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import type { DirectorySnapshot, RoutingView } from "./directory-do.js";
import { StaleCache } from "./stale-cache.js";

/** How long a Worker isolate reuses a snapshot for routing decisions (not for GET /v1/models). */
const ROUTING_CACHE_MS = 1_000;
/**
 * The oldest routing view a request is routed by: between ROUTING_CACHE_MS and this, the cached
 * view is served and one refresh runs after the response (stale-while-revalidate); past it, the
 * request waits for a new read. An isolate that serves a request every few seconds thus never
 * puts the Directory's round trip on a request's path.
 */
export const ROUTING_MAX_AGE_MS = 10_000;
let cached: { at: number; snapshot: DirectorySnapshot } | null = null;
/** The env a routing read goes through: the latest request's (every one names the same Directory). */
let routingEnv: AppEnv | null = null;
const routing = new StaleCache<RoutingView>({
  load: async () => {
    if (!routingEnv) throw new Error("routing view read before any request");
    const view = await directoryStub(routingEnv).routing();
    cached = { at: Date.now(), snapshot: view.summaries };
    return view;
  },
  freshMs: ROUTING_CACHE_MS,
  maxAgeMs: ROUTING_MAX_AGE_MS,
  background: (work) => waitUntil(work),
  onError: (e) => log("warn", "routing view refresh failed", { error: String(e) }),
});

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
 * Summaries and shard layouts for routing tabs and requests to Region shards, at most
 * ROUTING_MAX_AGE_MS old (refreshed behind the request past ROUTING_CACHE_MS) unless `fresh`. A
 * stale layout only places a tab on a shard it would not have chosen; a shard that split moves
 * such tabs (region/shard-role.ts); a stale summary that finds no tab is re-read fresh by the caller.
 */
export async function routingView(env: AppEnv, fresh = false): Promise<RoutingView> {
  routingEnv = env;
  return routing.get(fresh);
}

/** Drop this isolate's cached routing (tests that change a shard layout mid-file). */
export function forgetRoutingCache(): void {
  cached = null;
  routing.clear();
}

/** The key directory shard for a key id (`keys:<first hex digit>`, 16 fixed objects). */
export function keyDirectoryStub(env: AppEnv, keyId: string) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName(`keys:${keyId.slice(0, 1)}`));
}

/** The object that sums HTTP request counts from every isolate (GET /metrics). */
export function metricsDirectoryStub(env: AppEnv) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName("metrics"));
}
