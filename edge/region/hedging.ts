import { log } from "../http/log.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { Match } from "../../shared/scheduling/linear-scan.js";
import type { MatchRequest } from "../../shared/scheduling/score.js";
import { DEFAULT_HEDGE_POLICY, type HedgePolicy } from "../../shared/scheduling/hedging.js";
import type { JobLeases } from "./job-leases.js";
import type { JobStore } from "./job-store.js";
import type { RegionStats } from "./region-stats.js";
import type { TabChannel } from "./tab-channel.js";
import type { TabMatcher } from "./tab-matcher.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";

/**
 * Hedged first token on the Region side (the decision is shared/scheduling/hedging.ts): a new job
 * with a latency budget whose chosen tab has no timed job also goes to the best known idle tab.
 * The job row stays bound to the chosen tab; the second tab holds the same job id as a hedge.
 * Whichever tab's first text reaches the object first keeps the job (a delta without text decides
 * nothing) — if it is the hedge, the job is rebound to it (a new attempt, as a failover is) — and
 * the other is sent `job.cancel`. The loser's frames are then those of a job not running on it
 * (ignored; its job.done(abort) frees it), so the client sees one answer and usage and credit are
 * the winner's alone.
 *
 * When the hedge wins against a chosen tab that had never been timed, that tab is not cancelled at
 * once (policy `timeLosers`): it runs on to its own first delta, which times it — dispatch to first
 * delta, as any job is timed here — and is cancelled then. Otherwise a tab slower than its
 * benchmark would lose every race, never be timed, and be chosen first again and again.
 *
 * Not protocol-visible: the hedge tab receives an ordinary job.assign and, if it loses, an
 * ordinary job.cancel, both of which every protocol version handles.
 */

interface Hedge {
  /** The second tab racing the job. */
  tabId: string;
  /** The tab the job row was bound to when the race started. */
  firstTabId: string;
  startedAt: number;
  /** When the first tab was sent the job, and whether it had ever been timed then. */
  firstDispatchedAt: number;
  firstUntimed: boolean;
  req: MatchRequest;
  promptTokens: number;
  model: string;
}

/** A first tab that lost its race, running on to its own first token to be timed. */
interface TimedLoser {
  tabId: string;
  dispatchedAt: number;
  req: MatchRequest;
  promptTokens: number;
  model: string;
}

export interface HedgingDeps {
  jobs: JobStore;
  tabs: TabRegistry;
  channel: TabChannel;
  matcher: TabMatcher;
  leases: JobLeases;
  /** The region's report counts hedges, wins and the losers' time (docs/status.md). */
  stats: RegionStats;
  /** Placement.updateTab: a tab change that keeps the matching index in step. */
  updateTab(tab: TabRecord, patch: Parameters<TabRegistry["update"]>[1]): void;
}

/** What hedging cost and won since the object started (logged; the region's stats keep windows). */
export interface HedgingCounts {
  started: number;
  /** Races the hedge tab won (the job moved to it). */
  hedgeWon: number;
  /** Time the losing tabs spent on jobs they were then cancelled from: the hedging cost. */
  loserBusyMs: number;
  /** Losing first tabs timed to their own first token (policy `timeLosers`). */
  losersTimed: number;
}

export class Hedging {
  private readonly byJob = new Map<string, Hedge>();
  /** Per job, its losing first tab still running to its first token. */
  private readonly losers = new Map<string, TimedLoser>();
  readonly counts: HedgingCounts = { started: 0, hedgeWon: 0, loserBusyMs: 0, losersTimed: 0 };

  constructor(
    private readonly d: HedgingDeps,
    private readonly policy: HedgePolicy = DEFAULT_HEDGE_POLICY,
  ) {}

  /**
   * Start the job on a second tab too, when the scheduler says it is worth it. `job` is what the
   * first tab was sent (its seed included, so both tabs would write the same answer).
   */
  start(jobId: string, job: JobSpec, req: MatchRequest, chosen: Match, promptTokens: number): void {
    const second = this.d.matcher.hedgeFor(req, Date.now(), chosen, this.policy);
    const tab = second ? this.d.tabs.get(second.tab.id) : undefined;
    if (!tab || tab.jobId || tab.state !== "idle") return;
    const now = Date.now();
    const firstDispatchedAt = this.d.jobs.get(jobId)?.dispatched_at ?? now;
    const firstUntimed = this.d.matcher.observedPrefillSpeed(chosen.tab.id) === null;
    this.d.updateTab(tab, { jobId, state: "busy" });
    this.d.matcher.assigned(
      tab.tabId,
      jobId,
      { promptTokens, maxTokens: job.sampling.max_tokens },
      now,
    );
    tab.lastAssignedAt = now;
    const sent = this.d.channel.send(tab, { type: "job.assign", job, attempt: 1 });
    if (!sent) {
      this.d.updateTab(tab, { jobId: null, state: "idle" });
      return;
    }
    this.byJob.set(jobId, {
      tabId: tab.tabId,
      firstTabId: chosen.tab.id,
      startedAt: now,
      firstDispatchedAt,
      firstUntimed,
      req,
      promptTokens,
      model: job.model,
    });
    this.counts.started++;
    this.d.stats.hedged(job.model);
    log("info", "job hedged on a second tab", { jobId, tab: tab.publicId });
  }

  /**
   * Whether `tab` is racing `jobId` as its hedge, or is the first tab that lost and runs on to be
   * timed: either way its delta goes to `hedgeDelta` first.
   */
  isHedge(tab: TabRecord, jobId: string): boolean {
    return (
      this.byJob.get(jobId)?.tabId === tab.tabId || this.losers.get(jobId)?.tabId === tab.tabId
    );
  }

  /**
   * A delta from the hedge tab. Its first one before any from the first tab wins the race: the
   * job is rebound to it and the first tab cancelled (or, untimed, left to run on to its own first
   * delta); returns true when the delta now belongs to the job's running attempt. A delta from a
   * losing first tab left running times it, and it is cancelled.
   */
  async hedgeDelta(tab: TabRecord, jobId: string): Promise<boolean> {
    const loser = this.losers.get(jobId);
    if (loser?.tabId === tab.tabId) {
      this.losers.delete(jobId);
      this.timeLoser(tab, jobId, loser);
      return false;
    }
    const hedge = this.byJob.get(jobId);
    const row = this.d.jobs.get(jobId);
    if (!hedge || hedge.tabId !== tab.tabId || !row || row.first_token_at !== null) return false;
    if (row.node_id !== hedge.firstTabId) return false;
    this.byJob.delete(jobId);
    this.counts.hedgeWon++;
    this.d.stats.hedgeWon(hedge.model);
    const first = this.d.tabs.get(hedge.firstTabId);
    if (first && this.policy.timeLosers && hedge.firstUntimed && first.jobId === jobId) {
      this.losers.set(jobId, {
        tabId: first.tabId,
        dispatchedAt: hedge.firstDispatchedAt,
        req: hedge.req,
        promptTokens: hedge.promptTokens,
        model: hedge.model,
      });
    } else if (first) {
      // The first tab has worked on the job since it was sent it, a moment before the hedge.
      const since = { startedAt: hedge.firstDispatchedAt, model: hedge.model };
      this.cancelOn(first, jobId, "hedge won the race", since);
    }
    // The attempt began when the hedge was sent, so its time to first token is a measurement.
    this.d.jobs.assign(jobId, tab.tabId, hedge.startedAt);
    this.d.jobs.markStreaming(jobId);
    await this.d.leases.accepted(jobId, 0);
    log("info", "hedge won: job moved to the faster tab", { jobId, tab: tab.publicId });
    return true;
  }

  /** The job's first token came from its bound tab: the hedge lost and is cancelled. */
  firstToken(jobId: string): void {
    this.dropHedge(jobId, "the other tab answered first");
  }

  /**
   * The job ended, was cancelled or moved: a hedge still racing it is stopped, and so is a losing
   * first tab still running to be timed (untimed, then).
   */
  drop(jobId: string, reason: string): void {
    this.dropHedge(jobId, reason);
    const loser = this.losers.get(jobId);
    if (!loser) return;
    this.losers.delete(jobId);
    const tab = this.d.tabs.get(loser.tabId);
    if (tab)
      this.cancelOn(tab, jobId, reason, { startedAt: loser.dispatchedAt, model: loser.model });
  }

  private dropHedge(jobId: string, reason: string): void {
    const hedge = this.byJob.get(jobId);
    if (!hedge) return;
    this.byJob.delete(jobId);
    const tab = this.d.tabs.get(hedge.tabId);
    if (tab) this.cancelOn(tab, jobId, reason, hedge);
  }

  /**
   * The losing first tab's first delta: its time to first token is measured here as for any job
   * (dispatch to first delta; the socket is the only network in it), learned, and the tab
   * cancelled. No decode rate: the answer is not its to write.
   */
  private timeLoser(tab: TabRecord, jobId: string, loser: TimedLoser): void {
    if (tab.jobId !== jobId) return;
    const now = Date.now();
    if (loser.promptTokens > 0) {
      this.d.matcher.observe(tab.tabId, {
        clientLocation: loser.req.clientLocation,
        timedAt: "tab",
        promptTokens: loser.promptTokens,
        ttftMs: now - loser.dispatchedAt,
      });
      this.counts.losersTimed++;
    }
    this.cancelOn(tab, jobId, "timed after losing the race", {
      startedAt: loser.dispatchedAt,
      model: loser.model,
    });
    log("info", "losing tab timed to its first token", { jobId, tab: tab.publicId });
  }

  /** Tell a losing tab to stop; it stays bound until its job.done(abort) frees it. */
  private cancelOn(
    tab: TabRecord,
    jobId: string,
    reason: string,
    race: { startedAt: number; model: string },
  ): void {
    if (tab.jobId !== jobId) return;
    const busyMs = Date.now() - race.startedAt;
    this.counts.loserBusyMs += busyMs;
    this.d.stats.hedgeLoser(race.model, busyMs);
    this.d.channel.send(tab, { type: "job.cancel", jobId, reason });
  }
}
