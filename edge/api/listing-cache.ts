import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";

/** Every listing cache of this isolate (forgetListings). */
const allListings = new Set<ListingCache<unknown>>();

/**
 * The public listings (GET /v1/models, GET /v1/nodes) need no key, so anyone can send them as fast
 * as they like; each read asks the one Directory object (and /v1/nodes every Region shard with
 * tabs). So each isolate reuses an answer for LISTING_CACHE_MS (default 2 s, as /v1/status reuses
 * the routing view and says `max-age` to caches), and requests arriving while one read runs share
 * it: an isolate reads a listing at most once per period, however many ask.
 */
export class ListingCache<T> {
  private held: { at: number; value: T } | null = null;
  private reading: Promise<T> | null = null;

  constructor() {
    allListings.add(this);
  }

  async get(env: Partial<AppEnv>, load: () => Promise<T>): Promise<T> {
    const maxAgeMs = readConfig(env).listingCacheMs;
    const held = this.held;
    if (held && Date.now() - held.at < maxAgeMs) return held.value;
    if (!this.reading) {
      const started = Date.now();
      const reading = load().finally(() => {
        if (this.reading === reading) this.reading = null;
      });
      this.reading = reading;
      void reading.then(
        (value) => (this.held = { at: started, value }),
        () => undefined,
      );
    }
    return this.reading;
  }

  clear(): void {
    this.held = null;
    this.reading = null;
  }
}

/** Forget every listing this isolate holds (tests). */
export function forgetListings(): void {
  for (const cache of allListings) cache.clear();
}

/** `cache-control` for a listing (what this isolate would serve again, for as long), or null. */
export function listingCacheControl(env: Partial<AppEnv>): string | null {
  const s = Math.floor(readConfig(env).listingCacheMs / 1000);
  return s > 0 ? `public, max-age=${s}` : null;
}
