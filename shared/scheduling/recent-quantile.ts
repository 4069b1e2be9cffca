/**
 * A quantile of the last `window` values seen (a ring buffer, sorted again every `every` values
 * rather than on each read: the figures it serves — the recent mix of prompt sizes, of expected
 * first tokens — move slowly, and the Region object reads them on every request).
 */
export class RecentQuantile {
  private readonly ring: number[] = [];
  private next = 0;
  private sinceSort = 0;
  private sorted: number[] = [];

  constructor(
    private readonly window = 256,
    private readonly every = 16,
  ) {}

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    if (this.ring.length < this.window) this.ring.push(value);
    else this.ring[this.next] = value;
    this.next = (this.next + 1) % this.window;
    if (++this.sinceSort >= this.every || this.sorted.length === 0) this.resort();
  }

  /** Values seen (at most `window`). */
  get size(): number {
    return this.ring.length;
  }

  /** The q-quantile (0–1) of the recent values, nearest rank; NaN before any value. */
  quantile(q: number): number {
    const xs = this.sorted;
    if (xs.length === 0) return Number.NaN;
    const rank = Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1));
    return xs[rank]!;
  }

  private resort(): void {
    this.sorted = [...this.ring].sort((a, b) => a - b);
    this.sinceSort = 0;
  }
}
