import type { AppEnv } from "../env.js";

/**
 * Timing and limits of a Region object, from variables with defaults. Tests shorten them through
 * vitest's miniflare bindings; production uses the defaults unless wrangler.toml says otherwise.
 */
export interface RegionConfig {
  /** Tabs ping every half interval; 1.5 intervals of silence mark a tab gone (detected < 2). */
  statusIntervalMs: number;
  /** A tab must accept an assigned job within this time. */
  acceptMs: number;
  /** A streaming job whose tab sends nothing for this long is moved to another tab. */
  leaseMs: number;
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
  /** Retry-After suggested with 429/503 when the queue is full or no tab frees up. */
  queueRetryAfterMs: number;
}

function num(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isFinite(n) && n > 0 ? n : fallback;
}

export function regionConfig(env: AppEnv): RegionConfig {
  return {
    statusIntervalMs: num(env.STATUS_INTERVAL_MS, 15_000),
    acceptMs: num(env.ACCEPT_MS, 10_000),
    leaseMs: num(env.LEASE_MS, 30_000),
    redispatchWaitMs: num(env.REDISPATCH_WAIT_MS, 30_000),
    jobTtlMs: num(env.JOB_TTL_MS, 3_600_000),
    // MAX_ATTEMPTS=1 switches failover off (the churn benchmark's baseline).
    maxAttempts: num(env.MAX_ATTEMPTS, 3),
    maxNodesPerIp: num(env.MAX_NODES_PER_IP, 8),
    queueCapacity: num(env.QUEUE_CAPACITY, 100),
    queueWaitMs: num(env.QUEUE_WAIT_MS, 30_000),
    queueRetryAfterMs: 2_000,
  };
}
