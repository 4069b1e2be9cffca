import { isEligible, scoreTab, type CandidateTab, type MatchRequest } from "./score.js";
import type { Match } from "./linear-scan.js";

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
  /**
   * The second tab is the one with the best first token in the first's bad case, counting an
   * untimed tab at this share of its benchmark's prefill speed (its own bad case); 0 races only
   * timed tabs. bench:geo's hedging world measured why (docs/routing.md): a timed second is
   * certain but, at load, the timed fast tabs are busy and the best idle timed one is often a slow
   * tab — the race then caps the wait at that slow tab's time.
   */
  untimedSpeedShare: number;
  /**
   * An untimed first tab that loses the race runs on to its first token before it is cancelled,
   * so the coordinator times it (a measurement, with the request's real prompt) instead of
   * believing its benchmark again next time. Without it, a tab slower than its benchmark loses
   * every race it is put in, is never timed, and keeps being chosen first.
   */
  timeLosers: boolean;
}

export const DEFAULT_HEDGE_POLICY: HedgePolicy = {
  uncertainBelowSamples: 1,
  maxEstimateRatio: 2,
  untimedSpeedShare: 0,
  timeLosers: true,
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

/** What the hedge choice reads of the scheduler (shared/scheduling/scheduler.ts). */
export interface HedgeView {
  readonly index: { tabs(): Iterable<CandidateTab>; readonly staleAfterMs: number };
  /** Jobs timed on the tab. */
  samples(tabId: string): number;
}

/**
 * The tab's first token if it is as slow as it may be: a timed tab as estimated, an untimed one at
 * `untimedSpeedShare` of its benchmark's prefill speed.
 */
function worstCaseMs(match: Match, samples: number, policy: HedgePolicy): number {
  const { estimate } = match;
  if (samples >= policy.uncertainBelowSamples) return estimate.objectiveMs;
  return estimate.objectiveMs + estimate.prefillMs * (1 / policy.untimedSpeedShare - 1);
}

/**
 * The second tab to race `chosen` on, or null: only for a request with a latency budget whose
 * chosen tab runs it now (not behind another job) with too little history to trust its estimate.
 * The second is the idle tab with the best first token in its own bad case (timed tabs as
 * estimated; untimed ones only when `untimedSpeedShare` > 0), if its estimate is close enough.
 */
export function chooseHedge(
  view: HedgeView,
  req: MatchRequest,
  nowMs: number,
  chosen: Match,
  policy: HedgePolicy = DEFAULT_HEDGE_POLICY,
): Match | null {
  if (chosen.tab.queue.jobsAhead > 0) return null; // waiting behind a job: nothing to race yet
  if (!wantsHedge(req, view.samples(chosen.tab.id), policy)) return null;
  // A scan: hedges are few (budgeted requests landing on a tab without history).
  let best: Match | null = null;
  let bestWorst = Infinity;
  for (const tab of view.index.tabs()) {
    if (tab.id === chosen.tab.id || tab.queue.jobsAhead > 0) continue;
    if (!isEligible(tab, req.model, nowMs, view.index.staleAfterMs)) continue;
    const samples = view.samples(tab.id);
    if (samples < policy.uncertainBelowSamples && policy.untimedSpeedShare <= 0) continue;
    const match = { tab, estimate: scoreTab(tab, req, nowMs) };
    const worst = worstCaseMs(match, samples, policy);
    if (worst < bestWorst || (worst === bestWorst && best && tab.id < best.tab.id)) {
      best = match;
      bestWorst = worst;
    }
  }
  return best && worthRacing(chosen, best, policy) ? best : null;
}
