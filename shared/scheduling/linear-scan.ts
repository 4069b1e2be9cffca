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
 * Reference matcher: looks at every tab. The index must choose exactly what this chooses; tests and
 * bench:match compare them.
 */
export function linearBest(
  tabs: Iterable<CandidateTab>,
  req: MatchRequest,
  nowMs: number,
  staleAfterMs = DEFAULT_STALE_AFTER_MS,
): Match | null {
  let best: CandidateTab | null = null;
  let bestScore = Infinity;
  for (const tab of tabs) {
    if (!isEligible(tab, req.model, nowMs, staleAfterMs)) continue;
    const score = objectiveMs(tab, req, nowMs);
    if (best === null || isBetter(score, tab.id, bestScore, best.id)) {
      best = tab;
      bestScore = score;
    }
  }
  return best ? { tab: best, estimate: scoreTab(best, req, nowMs) } : null;
}
