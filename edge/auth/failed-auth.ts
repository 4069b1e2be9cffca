import { ApiError } from "../http/api-error.js";
import { AddressBuckets, type AddressBucket } from "../http/address-buckets.js";
import { log } from "../http/log.js";

/**
 * Failed authentications per address, counted in this isolate's memory: a token bucket per
 * address, FAILED_AUTH_BURST failures at once, then FAILED_AUTH_PER_MIN a minute. A failure is a
 * request that needs a key and sent a malformed, unknown or revoked one, or none while the
 * anonymous tier is off. Each request with a made-up `tg_…` key costs a SHA-256 and a key-directory
 * call before its 401; an address past its bucket is answered 429 before either — at the top of
 * the Worker (early-refusal.ts), else in authenticate.ts — unless the key it sends is one this
 * isolate already saw verified (verify-key.ts `knownValidKey`), so a legitimate client behind the
 * same address as a guesser keeps working wherever its key is known.
 *
 * In memory, not in a Durable Object: a durable counter would cost an object call per refused
 * request (the very cost this bounds) and would store something for callers that never
 * authenticated. Each isolate counts on its own, so a guesser spread over n isolates gets n
 * buckets, each of them bounded. The refusal is counted against no key.
 */
export const FAILED_AUTH_BURST = 20;
export const FAILED_AUTH_PER_MIN = 10;
interface Bucket extends AddressBucket {
  /** Requests refused since the bucket ran dry (logged once per refusal episode, not per request). */
  refused: number;
}

const buckets = new AddressBuckets<Bucket>(FAILED_AUTH_BURST, FAILED_AUTH_PER_MIN);
const current = (ip: string, now: number) => buckets.get(ip, now, true);

/**
 * Null when `ip` may still try a key; else the 429 to answer (seconds until one more failure is
 * allowed in retry-after). Costs one map lookup: no hashing, no object call, no body read.
 */
export function failedAuthRefusal(ip: string, now = Date.now()): ApiError | null {
  const b = current(ip, now);
  if (!b || b.tokens >= 1) return null;
  if (b.refused++ === 0) {
    // One line per episode, not per refused request (a flood must not become a log flood).
    log("warn", "failed authentications over the limit", { ip, perMinute: FAILED_AUTH_PER_MIN });
  }
  const retryS = buckets.secondsToOne(b);
  return new ApiError(
    429,
    "rate_limit_error",
    `Too many requests without a valid API key from this address (limit ${FAILED_AUTH_BURST}, then ${FAILED_AUTH_PER_MIN} per minute); retry after ${retryS} s with a valid key.`,
    null,
    "too_many_failed_authentications",
    { "retry-after": String(retryS) },
  );
}

/**
 * Count one failed authentication (a missing, malformed, unknown or revoked key) from `ip`. Logged here while
 * the address is within its bucket, so the log of refused keys is bounded per address like the
 * refusals themselves (on-error.ts does not log these answers one by one).
 */
export function noteFailedAuth(
  ip: string,
  fields: { requestId: string; code: string },
  now = Date.now(),
): void {
  const b = current(ip, now) ?? { tokens: FAILED_AUTH_BURST, at: now, refused: 0 };
  if (b.tokens >= 1) log("info", "authentication failed", { ...fields, ip });
  b.tokens = Math.max(0, b.tokens - 1);
  if (b.tokens >= 1) b.refused = 0;
  buckets.put(ip, b);
}
