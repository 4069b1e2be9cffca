/**
 * Requests waiting for a tab when none can take them now (and no cloud fallback is configured).
 * Bounded, because an unbounded queue turns overload into timeouts for everyone: when it is full
 * the caller answers 429 with a Retry-After taken from how fast the queue has been draining.
 *
 * Order: higher priority classes first (class 0 is the highest), arrival order within a class.
 * Dispatch asks for the first waiting request a freed tab can serve (`takeFirst`), so a request
 * for a rare model does not block the ones behind it.
 */

/**
 * The priority classes of waiting requests, highest first (docs/credits.md): an API key that asked
 * for a latency tier and holds enough linked credit for it (`interactive`, then `batch`) goes
 * ahead of keys without credit (`key`, the base tier), which go ahead of the keyless tier.
 * Region objects store the class as the job's `priority`; failovers go before all of them.
 */
export const QueueClass = { interactive: 0, batch: 1, key: 2, anonymous: 3 } as const;
export type QueueClass = (typeof QueueClass)[keyof typeof QueueClass];
export const QUEUE_CLASSES = 4;

export type Enqueued =
  { kind: "queued"; position: number } | { kind: "full"; retryAfterMs: number };

export interface WaitQueueOptions {
  capacity: number;
  /** Number of priority classes; class 0 is served first. */
  priorities?: number;
  /** Retry-After suggested before any departure has been seen. */
  defaultRetryAfterMs?: number;
  /** Clamp for the suggestion, so clients neither hammer nor give up. */
  minRetryAfterMs?: number;
  maxRetryAfterMs?: number;
}

interface Waiting<T> {
  id: string;
  item: T;
  enqueuedAtMs: number;
}

export class WaitQueue<T> {
  private readonly classes: Waiting<T>[][];
  private count = 0;
  /** EWMA of the time between departures (dispatches), for the Retry-After estimate. */
  private departureGapMs: number | null = null;
  private lastDepartureMs: number | null = null;
  private readonly opts: Required<WaitQueueOptions>;

  constructor(options: WaitQueueOptions) {
    if (!(options.capacity >= 0)) throw new RangeError("capacity must be ≥ 0");
    this.opts = {
      priorities: QUEUE_CLASSES,
      defaultRetryAfterMs: 5_000,
      minRetryAfterMs: 1_000,
      maxRetryAfterMs: 60_000,
      ...options,
    };
    this.classes = Array.from({ length: this.opts.priorities }, () => []);
  }

  get size(): number {
    return this.count;
  }

  get capacity(): number {
    return this.opts.capacity;
  }

  enqueue(id: string, item: T, priority: number, nowMs: number): Enqueued {
    if (this.count >= this.opts.capacity)
      return { kind: "full", retryAfterMs: this.retryAfterMs() };
    const cls = Math.min(this.classes.length - 1, Math.max(0, Math.floor(priority)));
    this.classes[cls]!.push({ id, item, enqueuedAtMs: nowMs });
    this.count++;
    let position = 0;
    for (let c = 0; c <= cls; c++) position += this.classes[c]!.length;
    return { kind: "queued", position };
  }

  /** Removes and returns the first waiting item (in priority, then arrival order) that `accept`s. */
  takeFirst(
    accept: (item: T) => boolean,
    nowMs: number,
  ): { id: string; item: T; waitedMs: number } | null {
    for (const cls of this.classes) {
      const i = cls.findIndex((w) => accept(w.item));
      if (i < 0) continue;
      const [w] = cls.splice(i, 1);
      this.count--;
      this.noteDeparture(nowMs);
      return { id: w!.id, item: w!.item, waitedMs: nowMs - w!.enqueuedAtMs };
    }
    return null;
  }

  /** Cancels a waiting request (client went away); true if it was waiting. */
  remove(id: string): boolean {
    for (const cls of this.classes) {
      const i = cls.findIndex((w) => w.id === id);
      if (i >= 0) {
        cls.splice(i, 1);
        this.count--;
        return true;
      }
    }
    return false;
  }

  /** Drops requests that waited longer than `maxWaitMs`; returns them so the caller can answer. */
  expire(nowMs: number, maxWaitMs: number): { id: string; item: T }[] {
    const gone: { id: string; item: T }[] = [];
    for (const cls of this.classes) {
      // Arrival order within a class: expired ones are a prefix.
      while (cls.length > 0 && nowMs - cls[0]!.enqueuedAtMs > maxWaitMs) {
        const w = cls.shift()!;
        gone.push({ id: w.id, item: w.item });
        this.count--;
      }
    }
    return gone;
  }

  /**
   * How long until a slot is likely free: the recent average gap between departures (one departure
   * frees one slot), clamped. Before any departure, the configured default.
   */
  retryAfterMs(): number {
    const gap = this.departureGapMs ?? this.opts.defaultRetryAfterMs;
    return Math.min(this.opts.maxRetryAfterMs, Math.max(this.opts.minRetryAfterMs, Math.ceil(gap)));
  }

  private noteDeparture(nowMs: number): void {
    if (this.lastDepartureMs !== null) {
      const gap = Math.max(0, nowMs - this.lastDepartureMs);
      this.departureGapMs =
        this.departureGapMs === null ? gap : 0.8 * this.departureGapMs + 0.2 * gap;
    }
    this.lastDepartureMs = nowMs;
  }
}

/** Retry-After header value (whole seconds, at least 1) for a suggestion in ms. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
