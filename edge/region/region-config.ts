import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";

/**
 * Timing and limits of a Region object, from variables with defaults (parsed in edge/config.ts; see
 * docs/limits.md). Tests shorten them through vitest's miniflare bindings; production uses the
 * defaults unless wrangler.toml says otherwise.
 */
export interface RegionConfig {
  /** Tabs ping every half interval; 1.5 intervals of silence mark a tab gone (detected < 2). */
  statusIntervalMs: number;
  /** A tab must accept an assigned job within this time. */
  acceptMs: number;
  /** A streaming job whose tab sends nothing for this long is moved to another tab. */
  leaseMs: number;
  /** Prefill rate assumed for a tab the region has not yet seen finish a job (tokens/s). */
  prefillUnseenTps: number;
  /** A tab may take at most this long (plus the lease) from accept to its first token. */
  prefillMaxMs: number;
  /** How long a job that lost its tab waits for another one before failing. */
  redispatchWaitMs: number;
  /** Finished jobs (and their text) are kept this long for GET /v1/jobs/:id and resume. */
  jobTtlMs: number;
  /** Total attempts (first tab + replacements) before a job fails. */
  maxAttempts: number;
  /** Contributor sockets allowed from one IP address in one region. */
  maxNodesPerIp: number;
  /** Requests that may wait for a tab in this region; beyond it clients get 429. */
  queueCapacity: number;
  /** How long a request waits in the queue before it gets 503. */
  queueWaitMs: number;
  /** A socket that has not said `hello` this long after the upgrade is closed. */
  helloDeadlineMs: number;
  /** Per-socket frame budget of a tab (all frames), a token bucket. */
  tabFramesPerSecond: number;
  tabFrameBurst: number;
  /** Finished jobs before a new identity leaves probation. */
  probationJobs: number;
  /** Share of new requests tabs on probation may take while a trusted tab could. */
  probationShare: number;
  /** Retry-After suggested with 429/503 when the queue is full or no tab frees up. */
  queueRetryAfterMs: number;
}

/** The Region's view of the coordinator configuration (edge/config.ts parses and validates it). */
export function regionConfig(env: AppEnv): RegionConfig {
  return { ...readConfig(env).region, queueRetryAfterMs: 2_000 };
}
