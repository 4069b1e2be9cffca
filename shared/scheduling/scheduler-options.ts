/**
 * The Scheduler's options (scheduler.ts) and their defaults, with what bench:geo measured for
 * each choice (docs/routing.md). Every option has a default; the Region object uses them all as
 * they are, and the simulator's flags (scripts/sim/flags.ts) set them one by one to measure.
 */

export interface SchedulerOptions {
  /** Tabs whose last heartbeat is older than this are never chosen. */
  staleAfterMs?: number;
  /** See `idleFirst`: how much faster a busy tab must be to queue a job behind its running one. */
  idlePreference?: number;
  /**
   * Jobs a tab may hold behind its running one. 1: the tab starts the next job the moment the
   * current one ends (no round trip lost) and the estimate needs to see only one answer ahead.
   */
  maxQueued?: number;
  /**
   * How long after a tab served a conversation turn its cached history is protected: until then
   * another request takes that tab only when it saves more than the follow-up turn would lose
   * (the history's prefill). Covers a person reading the answer and typing a reply.
   */
  holdMs?: number;
  /**
   * Protect a history only as long as replies are seen to come (`ReplyPace`: the 99th percentile
   * of the gaps between a turn ending and the next arriving, at most `holdMs`). Default on.
   */
  learnReplyPace?: boolean;
  /**
   * The protection, as a multiple of the history's prefill time on the tab: what another request
   * must save to take the tab. bench:geo measured 1, 2 and 3 (docs/routing.md).
   */
  holdWeight?: number;
  /**
   * For a follow-up turn whose history no tab holds any more, another conversation's protected
   * history counts this many times its protection. Such a turn prefills its whole history wherever
   * it runs, so it is slow anyway; taking a held tab to make it less slow makes that tab's own
   * follow-up slow too (bench:geo: at 70% load nearly three in four misses were histories evicted by
   * another follow-up that had missed — a chain). 1: like any other request.
   */
  missWeight?: number;
  /**
   * A running job that outlives its expected end is expected to run on for this share of its
   * estimate (again and again while it lasts), instead of the tab looking about to free up.
   */
  overdueShare?: number;
  /**
   * The share of max_tokens a running answer is expected to reach, for the wait behind it. 1 is
   * the upper bound; below it, a job that runs past its estimate is caught by `overdueShare`.
   */
  answerShare?: number;
  /**
   * Queue jobs behind a tab no job has been timed on yet. Off by default: such a tab's finish
   * estimate is its own benchmark, and a job queued behind a tab slower than it claims waits for
   * all of the difference (bench:geo's hedging world measured this as most of the p99).
   */
  queueBehindUntimed?: boolean;
  /** See SpeedTrackerOptions.fastStart. */
  fastStart?: boolean;
  /** See SpeedTrackerOptions.fleetPrior. */
  fleetPrior?: boolean;
  /**
   * Expect a running job to end when jobs that ran as long (as a share of their estimate) ended:
   * the `runLengthQuantile` of them (RunLengths, learned from jobs that ran to their end, told by
   * `left(…, { finished: true })`), re-timed as it runs. Off: the estimate (decode to max_tokens),
   * then `overdueShare`. Default on (bench:geo's load table and hedging world, docs/routing.md).
   */
  learnRunLengths?: boolean;
  /** See RunLengthsOptions.quantile. */
  runLengthQuantile?: number;
  /**
   * Spare the fast tabs for the long prompts only they serve quickly, while fast tabs are scarce:
   * a request whose prompt is under `spareBelowTokens` and whose choice prefills at
   * `spareFastFromPrefill` tokens/s or more takes the best slower tab instead when that is expected
   * at most `spareWithinMs` later; a fast tab turning idle takes such a request queued elsewhere
   * (`queuedToTake`) only if it gains more than `spareWithinMs`. Why: at high load bench:geo's
   * slowest 5% were long prompts (2,000+ tokens) that found the fast tabs busy — with short
   * prompts that an idle mid-range tab would have served a few hundred ms later — and went to a
   * slower tab or waited. The p95 falls at every load; the p50 rises (docs/routing.md). Default on.
   */
  spareFast?: boolean;
  /** Tabs at or above this prefill speed (learned, tokens/s) are the fast ones. */
  spareFastFromPrefill?: number;
  /** Prompts under this many tokens are the short ones. */
  spareBelowTokens?: number;
  /** What a short prompt may lose (expected first token, ms) to leave a fast tab free. */
  spareWithinMs?: number;
  /**
   * Spare only while fewer than this share of the fast tabs is idle: with fast tabs to spare,
   * a short prompt loses time for nothing.
   */
  spareIdleShare?: number;
  /**
   * Spare only while at least this share of recent requests (a moving average over about the last
   * 256) had long prompts (`spareBelowTokens` or more): with none to spare the fast tabs for, a
   * short prompt loses time for nothing (bench:geo's hedging world, prompts 200–800 tokens).
   */
  spareLongShare?: number;
  /**
   * When fewer than `spareLongShare` of recent requests have long prompts, spare the fast tabs for
   * the mix's own long prompts: those at or above this quantile of recent prompt sizes (SpareMix).
   * 0: off (no sparing without prompts of `spareBelowTokens`).
   */
  spareMixQuantile?: number;
  /** What a short prompt may lose under the relative rule (`spareMixQuantile`). */
  spareMixWithinMs?: number;
}

/**
 * `idleFirst`'s margin as the Scheduler uses it. Lower than the index's own default (1.25):
 * since a queued job moves to a tab that frees up first (`queuedToTake`), a wait that turns out
 * longer than estimated costs less, so queueing pays sooner. bench:geo, 8,000 requests, seed 1,
 * p95 at 30/70/95% load with moving: 1.0: 1557/1887/2059 ms; 1.1: 1573/1901/2070; 1.25:
 * 1545/1999/2125 (docs/routing.md). With learned run lengths (`learnRunLengths`) the wait
 * estimate is no longer an upper bound to be discounted: 1.0: 1546/1823/2002 ms, 1.1:
 * 1564/1862/2006, and the hedging world's p99 987 / 1009 ms (seeds 1 / 2) against 1010 / 1047.
 */
export const DEFAULT_SCHEDULER_IDLE_PREFERENCE = 1.0;
export const DEFAULT_MAX_QUEUED = 1;
export const DEFAULT_HOLD_MS = 60_000;
export const DEFAULT_HOLD_WEIGHT = 2;
export const DEFAULT_MISS_WEIGHT = 3;
export const DEFAULT_OVERDUE_SHARE = 1;
export const DEFAULT_ANSWER_SHARE = 1;
/**
 * `spareFast`'s defaults. bench:geo's world (docs/routing.md): mid-range GPUs prefill 400–1,000
 * tokens/s, high-end ones 1,000–2,000, each tab ×0.5–1.2 of its benchmark. Full runs (20,000
 * requests), p95 at 30 / 70 / 95% load, seed 1: off 1541 / 1804 / 2049 ms; on, 600 ms, always:
 * 1421 / 1717 / 1891 (p50 386 → 584 ms at 30%); on, idle share 0.25: 1538 / 1733 / 1896; 0.5:
 * 1522 / 1721 / 1890 (p50 405 ms at 30%). Seed 2: off 1582 / 1839 / 2088; 0.5: 1559 / 1742 / 1940.
 */
export const DEFAULT_SPARE_FAST_FROM_PREFILL = 900;
export const DEFAULT_SPARE_BELOW_TOKENS = 1000;
export const DEFAULT_SPARE_WITHIN_MS = 600;
export const DEFAULT_SPARE_IDLE_SHARE = 0.5;
export const DEFAULT_SPARE_LONG_SHARE = 0.05;
/**
 * The relative rule's defaults. bench:geo's hedging world (prompts 200–800 tokens, so the absolute
 * rule never engages), hedged p99 seeds 1 / 2: off 987 / 1009 ms; quantile 0.5 and 300 ms
 * 891 / 935. With a 64-prompt window (SpareMix waits for 256 now): 0.5 and 300 ms 894 / 927;
 * 0.4: 893 / 917; 0.6: 924 / 953; 0.5 and 200 ms: 911 / 947; 400 ms: 924 / 954
 * (docs/routing.md, "Hedged first token").
 */
export const DEFAULT_SPARE_MIX_QUANTILE = 0.5;
export const DEFAULT_SPARE_MIX_WITHIN_MS = 300;
