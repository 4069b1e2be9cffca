/**
 * One value read from elsewhere (the Directory's routing view), served from memory while it is
 * young, served stale while a single refresh runs in the background once it is older than
 * `freshMs`, and never served older than `maxAgeMs` (then the caller waits for a new read). This
 * takes the Directory's round trip off the request that happens to find the value a second old.
 */
export interface StaleCacheOptions<T> {
  load: () => Promise<T>;
  /** Younger than this: served as is. */
  freshMs: number;
  /** Older than this: never served; the caller waits for a new read. */
  maxAgeMs: number;
  /** Keeps a background refresh alive past the response (the runtime's `waitUntil`). */
  background: (work: Promise<unknown>) => void;
  /** A background refresh that failed (the stale value stays until `maxAgeMs`). */
  onError?: (error: unknown) => void;
  now?: () => number;
}

export class StaleCache<T> {
  private value: { at: number; value: T } | null = null;
  private refreshing: Promise<T> | null = null;
  /** Bumped by `clear()`: a read started before it is not kept. */
  private generation = 0;

  constructor(private readonly o: StaleCacheOptions<T>) {}

  /** `fresh`: a new read now (one begun earlier might predate what the caller needs to see). */
  async get(fresh = false): Promise<T> {
    const now = this.now();
    const held = this.value;
    if (fresh) return this.read(true);
    if (!held || now - held.at >= this.o.maxAgeMs) return this.read(false);
    if (now - held.at >= this.o.freshMs && !this.refreshing) {
      const refresh = this.read(false).catch((e: unknown) => this.o.onError?.(e));
      this.o.background(refresh);
    }
    return held.value;
  }

  /** The value last read, with when it was read (null before the first). */
  peek(): { at: number; value: T } | null {
    return this.value;
  }

  clear(): void {
    this.value = null;
    this.refreshing = null;
    this.generation++;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** A new read; callers without `own` share the one under way. */
  private read(own: boolean): Promise<T> {
    if (!own && this.refreshing) return this.refreshing;
    const started = this.now();
    const generation = this.generation;
    const reading = this.o.load().then(
      (value) => {
        if (this.refreshing === reading) this.refreshing = null;
        // Of two reads, the one begun later is kept.
        if (generation === this.generation && (!this.value || this.value.at <= started))
          this.value = { at: started, value };
        return value;
      },
      (e: unknown) => {
        if (this.refreshing === reading) this.refreshing = null;
        throw e;
      },
    );
    if (!own) this.refreshing = reading;
    return reading;
  }
}
