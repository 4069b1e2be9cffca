import { keyDirectoryStub } from "../directory/directory-client.js";
import type { KeyCheck } from "../directory/directory-do.js";
import type { AppEnv } from "../env.js";
import type { ParsedKey } from "./api-key.js";
import { hashKey } from "./api-key.js";
import { timingSafeEqual } from "./secret.js";

/** How long an isolate trusts a key it has seen verified (revocation is still checked per key). */
const VALID_CACHE_MS = 60_000;
/** Bound on the cache, so a flood of distinct valid keys cannot grow an isolate's memory. */
const VALID_CACHE_MAX = 10_000;

/** Key id → hash of keys the directory confirmed, newest last (Map keeps insertion order). */
const validKeys = new Map<string, { hash: string; at: number }>();

export interface VerifiedKey {
  check: KeyCheck;
  /** SHA-256 of the key, for the per-key object's own check. */
  hash: string;
}

/**
 * Check a well-formed key against the key directory before anything per-key is touched, so a
 * made-up `tg_…` key is refused without creating a Client object (docs/limits.md). Keys confirmed
 * valid are remembered per isolate for a minute; unknown and revoked answers are never cached here
 * (the Client object stays the authority on revocation and limits).
 */
export async function verifyKey(
  env: AppEnv,
  key: ParsedKey,
  opts: { cacheOnly?: boolean } = {},
): Promise<VerifiedKey> {
  const hash = await hashKey(key.key);
  const now = Date.now();
  const known = validKeys.get(key.id);
  if (known && now - known.at < VALID_CACHE_MS && timingSafeEqual(known.hash, hash)) {
    return { check: "valid", hash };
  }
  // An address over its failed-authentication limit is not worth a directory call (failed-auth.ts).
  if (opts.cacheOnly) return { check: "unknown", hash };
  const check = await keyDirectoryStub(env, key.id).checkKey(key.id, hash);
  if (check === "valid") {
    validKeys.delete(key.id);
    validKeys.set(key.id, { hash, at: now });
    if (validKeys.size > VALID_CACHE_MAX) {
      const oldest = validKeys.keys().next().value;
      if (oldest !== undefined) validKeys.delete(oldest);
    }
  } else validKeys.delete(key.id);
  return { check, hash };
}

/**
 * Whether this isolate saw key `id` verified within the last minute: a request bearing it from an
 * address over its failed-authentication limit is still checked (against the cache only), so a
 * legitimate client sharing an address with a key guesser is not locked out (failed-auth.ts).
 */
export function knownValidKey(id: string, now = Date.now()): boolean {
  const known = validKeys.get(id);
  return known !== undefined && now - known.at < VALID_CACHE_MS;
}
