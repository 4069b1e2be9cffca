/**
 * How long people take to reply, learned from the follow-up turns the scheduler sees: the time
 * from a tab finishing a turn (`served`) to the next turn of that conversation arriving. A holder's
 * history is protected for as long as replies are seen to come (a high quantile of these gaps,
 * never longer than `maxMs`): protecting it longer only keeps first turns off the tab for a reply
 * that, by then, rarely comes (bench:geo: a conversation's last turn held a tab 60 s for nothing).
 * Only times are kept, under the conversation's hash key, never text.
 */
export interface ReplyPaceOptions {
  /** The longest protection, and how long a served key is remembered to time its reply. */
  maxMs: number;
  /** The share of observed replies the window covers. */
  quantile?: number;
  /** Replies to see before the learned window replaces `maxMs`. */
  minSamples?: number;
  /** Gaps kept (the most recent). */
  capacity?: number;
  /** Served keys remembered at most (oldest dropped first). */
  maxKeys?: number;
}

export const DEFAULT_REPLY_QUANTILE = 0.99;

export class ReplyPace {
  private readonly maxMs: number;
  private readonly quantile: number;
  private readonly minSamples: number;
  private readonly capacity: number;
  private readonly maxKeys: number;
  /** Served keys in the order served (times only grow), for timing the reply. */
  private readonly servedAt = new Map<string, number>();
  private readonly gaps: number[] = [];
  private next = 0;
  private fresh = 0;
  private learned = false;
  private window: number;

  constructor(options: ReplyPaceOptions) {
    this.maxMs = options.maxMs;
    this.quantile = options.quantile ?? DEFAULT_REPLY_QUANTILE;
    this.minSamples = options.minSamples ?? 50;
    this.capacity = options.capacity ?? 512;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.window = this.maxMs;
  }

  /** A tab finished a turn: its conversation now has key `key`. */
  served(key: string, nowMs: number): void {
    for (const [k, at] of this.servedAt) {
      if (at > nowMs - this.maxMs && this.servedAt.size < this.maxKeys) break;
      this.servedAt.delete(k);
    }
    this.servedAt.delete(key);
    this.servedAt.set(key, nowMs);
  }

  /** A follow-up turn extending `key` arrived: time the reply (once per key). */
  replied(key: string, nowMs: number): void {
    const at = this.servedAt.get(key);
    if (at === undefined) return;
    this.servedAt.delete(key);
    const gap = nowMs - at;
    if (gap < 0 || gap > this.maxMs) return;
    if (this.gaps.length < this.capacity) this.gaps.push(gap);
    else this.gaps[this.next] = gap;
    this.next = (this.next + 1) % this.capacity;
    // Re-sorting on every reply would cost a sort per request; every 16th is plenty.
    this.fresh++;
    if (this.gaps.length >= this.minSamples && (this.fresh >= 16 || !this.learned)) {
      this.learned = true;
      this.fresh = 0;
      const sorted = [...this.gaps].sort((a, b) => a - b);
      const i = Math.min(sorted.length - 1, Math.ceil(this.quantile * sorted.length) - 1);
      this.window = Math.min(this.maxMs, sorted[Math.max(0, i)]!);
    }
  }

  /** How long a served history is protected now. */
  windowMs(): number {
    return this.window;
  }
}
