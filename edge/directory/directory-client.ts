import type { AppEnv } from "../env.js";
import type { DirectorySnapshot } from "./directory-do.js";

/** How long a Worker isolate reuses a snapshot for routing decisions (not for GET /v1/models). */
const ROUTING_CACHE_MS = 1_000;
let cached: { at: number; snapshot: DirectorySnapshot } | null = null;

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

/** The key directory shard for a key id (`keys:<first hex digit>`, 16 fixed objects). */
export function keyDirectoryStub(env: AppEnv, keyId: string) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName(`keys:${keyId.slice(0, 1)}`));
}

/** The object that sums HTTP request counts from every isolate (GET /metrics). */
export function metricsDirectoryStub(env: AppEnv) {
  return env.DIRECTORY.get(env.DIRECTORY.idFromName("metrics"));
}
