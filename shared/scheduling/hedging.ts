import type { Match } from "./linear-scan.js";
import type { MatchRequest } from "./score.js";

/**
 * Hedged first token: a request whose client set a latency budget, and whose chosen tab's time to
 * first token is uncertain (a tab the coordinator has timed only a few jobs on), starts on the two
 * best idle tabs at once; the first to send a token keeps the job and the other is cancelled. The
 * client sees one answer; the loser's prefill is the price, counted as hedging cost.
 *
 * Why only then: a tab's speed is its own benchmark until jobs have been timed on it, and
 * benchmarks are off by ±30% or more (a GPU shared with a game, a throttled laptop), so a new tab
 * is where a request lands on a tab several times slower than believed — the tail. A tab with a
 * history is predicted well enough that racing it would only burn GPU time.
 */
export interface HedgePolicy {
  /** The chosen tab counts as uncertain while fewer jobs than this have been timed on it. */
  uncertainBelowSamples: number;
  /**
   * The second tab races only if its own estimate is within this factor of the first's: a much
   * slower second can only win when the first is badly wrong, and costs its prefill every time.
   */
  maxEstimateRatio: number;
}

export const DEFAULT_HEDGE_POLICY: HedgePolicy = {
  uncertainBelowSamples: 1,
  maxEstimateRatio: 2,
};

/** Whether this request on this tab is worth racing against a second tab. */
export function wantsHedge(
  req: MatchRequest,
  chosenSamples: number,
  policy: HedgePolicy = DEFAULT_HEDGE_POLICY,
): boolean {
  return req.latencyBudgetMs !== undefined && chosenSamples < policy.uncertainBelowSamples;
}

/** Whether `second` is close enough to `first` to be worth its prefill as a hedge. */
export function worthRacing(
  first: Match,
  second: Match,
  policy: HedgePolicy = DEFAULT_HEDGE_POLICY,
): boolean {
  return second.estimate.objectiveMs <= first.estimate.objectiveMs * policy.maxEstimateRatio;
}
