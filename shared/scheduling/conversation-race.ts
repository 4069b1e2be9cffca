import { isEligible, scoreTab, type CandidateTab, type MatchRequest } from "./score.js";
import type { Match } from "./linear-scan.js";

/**
 * Racing a slow follow-up turn (issue 14's conversation-affinity target at 70% load). A follow-up
 * whose history is held by a slow tab (an integrated GPU prefilling the new message at 100–400
 * tokens/s) is started at once on that holder and on the best idle other tab, which prefills the
 * whole history; the first token wins, the other is cancelled, and the winner holds the
 * conversation from then on — so a conversation that started on a slow tab can move to a fast one
 * without betting its turn on the move. The Region object runs it with the hedging machinery
 * (edge/region/hedging.ts: same job id on two tabs, the first delta decides).
 */
export interface RacePolicy {
  /** Race only when the chosen tab's expected first token is at least this (ms). */
  aboveMs: number;
  /**
   * The second tab races only when its own estimate (whole history) is within this factor of the
   * chosen one's: a much slower second wins only when the first is badly wrong, and costs its
   * prefill every time.
   */
  maxEstimateRatio: number;
  /** Race follow-ups whose history no tab holds any more too (between the two best idle tabs). */
  misses: boolean;
  /** Never race on a tab whose history is protected (the race would evict it). */
  spareHeld: boolean;
}

export const DEFAULT_RACE_POLICY: RacePolicy = {
  aboveMs: 600,
  maxEstimateRatio: 1.5,
  misses: false,
  spareHeld: true,
};

/** What the race choice reads of the scheduler (shared/scheduling/scheduler.ts). */
export interface RaceView {
  /** Offered tabs as indexed: a protected holder's record carries its protection as delay. */
  readonly index: { tabs(): Iterable<CandidateTab>; readonly staleAfterMs: number };
  /** Whether another conversation's history on the tab is protected now. */
  isProtected(tabId: string): boolean;
}

/**
 * The second tab to race a follow-up turn on, or null. `hit`: `chosen` holds the turn's history
 * (its estimate counts only the new tokens). Only when the chosen tab runs the turn now (an idle
 * tab: nothing to race while it waits) and is expected at `aboveMs` or later; the second is the
 * idle tab with the best estimate for the whole prompt — other conversations' protection included,
 * so a race does not evict a history that is still wanted — if within `maxEstimateRatio`.
 */
export function chooseRace(
  view: RaceView,
  req: MatchRequest,
  nowMs: number,
  chosen: Match,
  hit: boolean,
  policy: RacePolicy = DEFAULT_RACE_POLICY,
): Match | null {
  if (chosen.tab.queue.jobsAhead > 0) return null;
  if (!hit && !policy.misses) return null;
  if (chosen.estimate.objectiveMs < policy.aboveMs) return null;
  // A scan, only for the slow follow-ups that qualify.
  let best: Match | null = null;
  for (const tab of view.index.tabs()) {
    if (tab.id === chosen.tab.id || tab.queue.jobsAhead > 0) continue;
    if (policy.spareHeld && view.isProtected(tab.id)) continue;
    if (!isEligible(tab, req.model, nowMs, view.index.staleAfterMs)) continue;
    const estimate = scoreTab(tab, req, nowMs);
    if (
      !best ||
      estimate.objectiveMs < best.estimate.objectiveMs ||
      (estimate.objectiveMs === best.estimate.objectiveMs && tab.id < best.tab.id)
    ) {
      best = { tab, estimate };
    }
  }
  if (!best) return null;
  return best.estimate.objectiveMs <= chosen.estimate.objectiveMs * policy.maxEstimateRatio
    ? best
    : null;
}
