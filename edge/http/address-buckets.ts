import { BoundedMap } from "./bounded-map.js";

/**
 * Token buckets per client address, in this isolate's memory: `burst` at once, then `perMinute`.
 * Bounded in addresses (the least recently stored is forgotten first), so a spread of addresses
 * cannot grow memory. Used by the failed-authentication limit (edge/auth/failed-auth.ts) and the
 * refusal-log budget (./refusal-log.ts); each keeps its own fields beside `tokens` and `at`.
 */
export interface AddressBucket {
  tokens: number;
  at: number;
}

export class AddressBuckets<B extends AddressBucket> {
  private readonly buckets: BoundedMap<string, B>;
  private readonly perMs: number;

  constructor(
    readonly burst: number,
    readonly perMinute: number,
    maxAddresses = 10_000,
  ) {
    this.perMs = perMinute / 60_000;
    this.buckets = new BoundedMap(maxAddresses);
  }

  /**
   * The address's bucket refilled to `now`, or undefined when it has none. With `forgetWhenFull`,
   * a bucket that has refilled completely is dropped (undefined), as if the address never came.
   */
  get(ip: string, now: number, forgetWhenFull = false): B | undefined {
    const b = this.buckets.get(ip);
    if (!b) return undefined;
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (forgetWhenFull && b.tokens >= this.burst) {
      this.buckets.delete(ip);
      return undefined;
    }
    return b;
  }

  /** Store `b` as the address's, most recently used. */
  put(ip: string, b: B): void {
    this.buckets.set(ip, b);
  }

  /** Whole seconds (at least 1) until `b` holds one token again. */
  secondsToOne(b: B): number {
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }
}
