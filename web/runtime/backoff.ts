/**
 * Reconnect delays: exponential from `baseMs`, capped at `capMs`, with "full jitter" (a uniform
 * draw in [delay/2, delay]) so a coordinator restart does not get every tab back in the same
 * millisecond.
 */
export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 500;
    this.capMs = opts.capMs ?? 30_000;
    this.random = opts.random ?? Math.random;
  }

  /** Delay before the next attempt; each call grows the next one. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  /** Call once a connection is healthy again (the coordinator said welcome). */
  reset(): void {
    this.attempt = 0;
  }
}
