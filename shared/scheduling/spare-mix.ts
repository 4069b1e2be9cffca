import { RecentQuantile } from "./recent-quantile.js";

/**
 * Which prompts are "short" for sparing the fast tabs (Scheduler option `spareFast`), from the
 * recent request mix. Two rules:
 *
 * - Absolute: while at least `longShare` of recent requests (a moving average over about the
 *   last 256) have `belowTokens` or more, the short prompts are those under `belowTokens`, and
 *   one may lose up to `withinMs` to leave a fast tab free (bench:geo's load world).
 * - Relative (`mixQuantile` > 0): when the mix has no such long prompts, the long ones are its own
 *   top share — prompts at or above the `mixQuantile` quantile of the last 256 sizes — and the
 *   short ones may lose up to `mixWithinMs`. Why: in bench:geo's hedging world (prompts 200–800
 *   tokens) the absolute rule never engages, and the tail was the 600–800-token prompts landing
 *   on mid-range tabs while 200-token prompts held the fast ones (docs/routing.md, "Hedged first
 *   token"). The smaller loss allowed is because the gap between the sizes is smaller: an
 *   800-token prompt gains less from a fast tab than a 3,000-token one.
 */
export interface SpareMixOptions {
  belowTokens: number;
  longShare: number;
  withinMs: number;
  mixQuantile: number;
  mixWithinMs: number;
}

/** Requests the moving average of `longShare` spans (its weight is 1 ÷ this). */
const LONG_SHARE_WINDOW = 256;
/**
 * Prompt sizes seen before the relative rule applies: a full window. Its quantile means little
 * before, and the moving average of `longShare` starts at 0, so early on it would read "no long
 * prompts" where they do come (bench:geo's per-region schedulers, which see few requests each).
 */
const MIX_MIN_SEEN = LONG_SHARE_WINDOW;

export class SpareMix {
  /** Moving average of the share of requests with prompts of `belowTokens` or more. */
  private longShare = 0;
  private readonly sizes = new RecentQuantile(LONG_SHARE_WINDOW);

  constructor(private readonly o: SpareMixOptions) {}

  /** A request arrived (every one, before it is placed). */
  note(promptTokens: number): void {
    const long = promptTokens >= this.o.belowTokens ? 1 : 0;
    this.longShare += (long - this.longShare) / LONG_SHARE_WINDOW;
    if (this.o.mixQuantile > 0) this.sizes.add(promptTokens);
  }

  /**
   * Prompts under this many tokens are short now, and what such a prompt may lose (ms of expected
   * first token) to leave a fast tab free; null while no rule applies (nothing to spare for).
   */
  rule(): { shortBelow: number; withinMs: number } | null {
    if (this.longShare >= this.o.longShare) {
      return { shortBelow: this.o.belowTokens, withinMs: this.o.withinMs };
    }
    if (this.o.mixQuantile <= 0 || this.sizes.size < MIX_MIN_SEEN) return null;
    return { shortBelow: this.sizes.quantile(this.o.mixQuantile), withinMs: this.o.mixWithinMs };
  }
}
