import {
  isBetter,
  isEligible,
  meetsBudget,
  objectiveMs,
  scoreTab,
  type CandidateTab,
  type MatchRequest,
  type ScoreBreakdown,
} from "./score.js";

/** The chosen tab and the estimate it was chosen on. */
export interface Match {
  tab: CandidateTab;
  estimate: ScoreBreakdown;
}

/**
 * Outcome of matching one request: a tab, or why there is none — "no_tabs" (nobody fresh serves the
 * model here: spill over) or "over_budget" (the best tab cannot meet the latency budget: spill over,
 * fall back to the cloud upstream, or queue). `best` lets the caller report how far off it was.
 */
export type MatchResult =
  { kind: "match"; match: Match } | { kind: "no_tabs" } | { kind: "over_budget"; best: Match };

export const DEFAULT_STALE_AFTER_MS = 45_000;

/** Applies the latency budget to the best tab (if the best misses it, every tab does). */
export function withBudget(best: Match | null, req: MatchRequest): MatchResult {
  if (!best) return { kind: "no_tabs" };
  return meetsBudget(best.estimate.objectiveMs, req)
    ? { kind: "match", match: best }
    : { kind: "over_budget", best };
}

/**
 * Default for how much faster (as a factor of the objective) a busy tab must be expected to be
 * before a request is queued behind its current job rather than sent to the best idle tab.
 */
export const DEFAULT_IDLE_PREFERENCE = 1.25;

/**
 * The matching policy: the best idle tab, unless the best tab overall (which may mean waiting
 * behind a job) is expected to be `idlePreference`× faster; then the latency budget. Waiting is only
 * chosen for a clear win because queue-wait estimates are the least reliable part of the estimate
 * (answers stop at lengths nobody knows in advance, tabs slow down or leave mid-job), and an idle
 * tab passed over is capacity wasted. bench:geo measures what this costs against the oracle.
 */
export function idleFirst(
  bestOf: (idleOnly: boolean) => Match | null,
  req: MatchRequest,
  idlePreference = DEFAULT_IDLE_PREFERENCE,
): MatchResult {
  const any = bestOf(false);
  if (!any) return { kind: "no_tabs" };
  const idle = any.tab.queue.jobsAhead === 0 ? any : bestOf(true);
  const chosen =
    idle && idle.estimate.objectiveMs <= any.estimate.objectiveMs * idlePreference ? idle : any;
  return withBudget(chosen, req);
}

/** `idleFirst` over a linear scan: the reference for CandidateIndex.match. */
export function linearMatch(
  tabs: Iterable<CandidateTab>,
  req: MatchRequest,
  nowMs: number,
  staleAfterMs = DEFAULT_STALE_AFTER_MS,
  idlePreference = DEFAULT_IDLE_PREFERENCE,
): MatchResult {
  const list = [...tabs]; // scanned up to twice; a generator would be empty the second time
  return idleFirst(
    (idleOnly) => linearBest(list, req, nowMs, staleAfterMs, idleOnly),
    req,
    idlePreference,
  );
}

/**
 * Reference matcher: looks at every tab. The index must choose exactly what this chooses; tests and
 * bench:match compare them.
 */
export function linearBest(
  tabs: Iterable<CandidateTab>,
  req: MatchRequest,
  nowMs: number,
  staleAfterMs = DEFAULT_STALE_AFTER_MS,
  idleOnly = false,
): Match | null {
  let best: CandidateTab | null = null;
  let bestScore = Infinity;
  for (const tab of tabs) {
    if (!isEligible(tab, req.model, nowMs, staleAfterMs)) continue;
    if (idleOnly && tab.queue.jobsAhead > 0) continue;
    const score = objectiveMs(tab, req, nowMs);
    if (best === null || isBetter(score, tab.id, bestScore, best.id)) {
      best = tab;
      bestScore = score;
    }
  }
  return best ? { tab: best, estimate: scoreTab(best, req, nowMs) } : null;
}
