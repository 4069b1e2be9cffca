/**
 * How long jobs really run, as a share of the scheduler's estimate (prefill plus decode to
 * max_tokens at the tab's learned speeds), learned from jobs that ran to their end — and from it,
 * when a job that is still running is expected to end, given how long it has run already.
 *
 * Why: the estimate is an upper bound at the start (answers stop before max_tokens) but not near
 * the end, where a few per cent of speed error on a 5 s job is hundreds of ms. A job queued behind
 * a tab whose running job "ends in 50 ms" then waited 300–1,500 ms (bench:geo's hedging world,
 * `--diagnose`: the busy-tab part of the p99 tail). Conditioning on the time already run gives the
 * remaining time the jobs that ran that long actually had.
 */
export interface RunLengthsOptions {
  /** Ratios kept (the most recent). */
  capacity?: number;
  /** Below this many ratios the scheduler keeps its plain estimate. */
  minSamples?: number;
  /**
   * Which of the survivors' ends to expect: 0.5 the median, 0.9 the 90th percentile. A job queued
   * behind one that runs longer still moves to a tab that frees up first (queuedToTake), so the
   * estimate need not be a bound.
   */
  quantile?: number;
}

/**
 * bench:geo, seed 1 (docs/routing.md): 0.5 cut the hedging world's p99 most but raised the load
 * table's p95 at 95% load (2070 → 2129 ms); 0.7 lowered every load row and the hedging p99 as
 * much (1168 → 1010 ms); 0.9 and above queued too little (hedging p99 1103 ms with moving).
 */
export const DEFAULT_RUN_LENGTH_QUANTILE = 0.7;

export class RunLengths {
  private readonly capacity: number;
  private readonly minSamples: number;
  private readonly quantile: number;
  /** Ring of the most recent ratios, and the same values sorted. */
  private readonly ring: number[] = [];
  private next = 0;
  private sorted: number[] = [];

  constructor(options: RunLengthsOptions = {}) {
    this.capacity = options.capacity ?? 512;
    this.minSamples = options.minSamples ?? 32;
    this.quantile = options.quantile ?? DEFAULT_RUN_LENGTH_QUANTILE;
  }

  get size(): number {
    return this.ring.length;
  }

  /** A job ran to its end: it took `actualMs` where `estimatedMs` was expected. */
  record(actualMs: number, estimatedMs: number): void {
    if (!(estimatedMs > 0) || !(actualMs >= 0) || !Number.isFinite(actualMs)) return;
    const ratio = actualMs / estimatedMs;
    if (this.ring.length < this.capacity) this.ring.push(ratio);
    else {
      const old = this.ring[this.next]!;
      this.ring[this.next] = ratio;
      this.sorted.splice(this.lowerBound(old), 1);
    }
    this.next = (this.next + 1) % this.capacity;
    this.sorted.splice(this.upperBound(ratio), 0, ratio);
  }

  /**
   * The expected run length, as a share of the estimate, of a job that has run `elapsedShare` of
   * its estimate and not ended: the quantile of the recorded ratios above `elapsedShare`. Null
   * while too few jobs were seen, or when this one has outrun all of them.
   */
  expectedShare(elapsedShare: number): number | null {
    if (this.sorted.length < this.minSamples) return null;
    const from = this.upperBound(elapsedShare);
    const survivors = this.sorted.length - from;
    if (survivors === 0) return null;
    const at = from + Math.min(survivors - 1, Math.floor(this.quantile * survivors));
    return this.sorted[at]!;
  }

  /** First index whose value is ≥ x. */
  private lowerBound(x: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index whose value is > x. */
  private upperBound(x: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
