import { haversineKm } from "../../shared/geo/distance.js";
import type { Rng } from "../../shared/scheduling/prng.js";
import type { CandidateTab, ScoreBreakdown } from "../../shared/scheduling/score.js";
import { Scheduler } from "../../shared/scheduling/scheduler.js";
import type { SchedulerOptions } from "../../shared/scheduling/scheduler-options.js";
import { REGION_CENTRES, REGION_HINTS, regionsByDistance } from "../../shared/geo/regions.js";
import {
  DEFAULT_SPILL_MARGIN,
  homeAcceptUpToMs,
  lineEstimateMs,
  rankNeighbours,
  regionOffers,
  spillPlan,
  WAITING_MOVE_INTERVAL_MS,
  WAITING_MOVE_MARGIN,
  WAITING_MOVE_SCAN,
  WAITING_MOVE_TRIES,
  waitingMove,
  waitRegion,
  type ModelOffer,
} from "../../shared/scheduling/spillover.js";
import { trueNetworkMs, type SimRequest, type SimTab } from "./population.js";
import { tokensToPrefill, type Truth } from "./simulate.js";

/**
 * Routing policies compared by bench:geo. Each sees only what a coordinator could know — which
 * jobs it assigned and which have finished — except the oracle, which reads the ground truth.
 */

/** What the coordinator learns when a job finishes on a tab. */
export interface FinishedJob {
  req: SimRequest;
  /** Dispatch to first token, without the time spent waiting behind other jobs. */
  serviceTtftMs: number;
  /** Tokens the tab prefilled: the new ones only when it held the conversation's history. */
  prefillTokens: number;
  prefillMs: number;
  decodeMs: number;
}

export interface Policy {
  readonly name: string;
  /** The tab to run `req` on, or -1 to keep it waiting until a tab frees up. */
  choose(req: SimRequest, nowMs: number): number;
  assigned(tab: number, req: SimRequest, nowMs: number): void;
  /** A job ended on the tab; returns a waiting request to put on it, if any. */
  finished(tab: number, job: FinishedJob, nowMs: number): SimRequest | null;
  /**
   * Periodic work, every `tickMs` of virtual time while jobs run (the Region object's `moves`
   * timer): may put waiting requests on tabs through `place`, one at a time.
   */
  tick?(nowMs: number, place: (tab: number, req: SimRequest) => void): void;
  readonly tickMs?: number;
}

/** Jobs assigned and not yet finished, per tab: all a coordinator knows without estimates. */
class LoadCounts {
  readonly jobs: Int32Array;
  constructor(n: number) {
    this.jobs = new Int32Array(n);
  }
  assigned(tab: number): void {
    this.jobs[tab]!++;
  }
  finished(tab: number): void {
    this.jobs[tab]!--;
  }
}

export function randomPolicy(tabs: readonly SimTab[], rng: Rng): Policy {
  return {
    name: "random",
    choose: () => rng.int(tabs.length),
    assigned: () => {},
    finished: () => null,
  };
}

/** Fewest jobs in flight; ties broken at random so equal tabs share the work. */
export function leastLoadedPolicy(tabs: readonly SimTab[], rng: Rng): Policy {
  const load = new LoadCounts(tabs.length);
  return {
    name: "least-loaded",
    choose() {
      let best = -1;
      let ties = 0;
      for (let i = 0; i < tabs.length; i++) {
        const j = load.jobs[i]!;
        if (best < 0 || j < load.jobs[best]!) {
          best = i;
          ties = 1;
        } else if (j === load.jobs[best]! && rng.int(++ties) === 0) best = i;
      }
      return best;
    },
    assigned: (tab) => load.assigned(tab),
    finished: (tab) => {
      load.finished(tab);
      return null;
    },
  };
}

/** Classic geo routing (anycast-style): always the nearest tab, whatever its load. */
export function nearestPolicy(tabs: readonly SimTab[]): Policy {
  return {
    name: "nearest-tab",
    choose(req) {
      let best = 0;
      let bestKm = Infinity;
      for (let i = 0; i < tabs.length; i++) {
        const km = haversineKm(req.client, tabs[i]!.location);
        if (km < bestKm) [best, bestKm] = [i, km];
      }
      return best;
    },
    assigned: () => {},
    finished: () => null,
  };
}

/** Load-aware geo routing: the nearest idle tab, or the nearest tab when none is idle. */
export function nearestIdlePolicy(tabs: readonly SimTab[]): Policy {
  const load = new LoadCounts(tabs.length);
  return {
    name: "nearest-idle",
    choose(req) {
      let bestIdle = -1;
      let bestIdleKm = Infinity;
      let bestAny = 0;
      let bestAnyKm = Infinity;
      for (let i = 0; i < tabs.length; i++) {
        const km = haversineKm(req.client, tabs[i]!.location);
        if (km < bestAnyKm) [bestAny, bestAnyKm] = [i, km];
        if (load.jobs[i] === 0 && km < bestIdleKm) [bestIdle, bestIdleKm] = [i, km];
      }
      return bestIdle >= 0 ? bestIdle : bestAny;
    },
    assigned: (tab) => load.assigned(tab),
    finished: (tab) => {
      load.finished(tab);
      return null;
    },
  };
}

/** Knows every true round trip, speed and queue: minimises the true TTFT of each request. */
export function oraclePolicy(tabs: readonly SimTab[], truth: Truth): Policy {
  return {
    name: "oracle",
    choose(req, nowMs) {
      let best = 0;
      let bestMs = Infinity;
      for (let i = 0; i < tabs.length; i++) {
        const tab = tabs[i]!;
        const ms =
          trueNetworkMs(req, tab) +
          Math.max(0, truth.freeAt[i]! - nowMs) +
          (tokensToPrefill(truth, i, req) * 1000) / tab.truePrefill;
        if (ms < bestMs) [best, bestMs] = [i, ms];
      }
      return best;
    },
    assigned: () => {},
    finished: () => null,
  };
}

const MODEL = "sim-3b";

/**
 * Tabgrid's policy: the coordinator's own `Scheduler` (shared/scheduling/scheduler.ts), fed what a
 * Region object knows — the tab's benchmark speeds, its measured socket RTT, the jobs it placed
 * and what each finished job showed (timed at the Region object, as the coordinator times it) —
 * and a waiting line for requests no tab is offered for (no idle tab, every busy one already
 * holding a job), which hands each tab that turns idle the oldest waiting request, as
 * edge/region/placement.ts `dispatchWaiting` does.
 */
export function tabgridPolicy(
  tabs: readonly SimTab[],
  // The Scheduler's own options pass through unchanged (the simulation's tabs never go stale).
  options: Omit<SchedulerOptions, "staleAfterMs"> & {
    /**
     * A tab turning idle takes a job queued behind another tab when it would start it sooner
     * (Scheduler.queuedToTake, as edge/region/placement.ts `dispatchWaiting` does). Off: the
     * policy before issue 14's change, for comparison.
     */
    moveQueued?: boolean;
    /**
     * One Scheduler per region, as deployed: a request goes to the client's nearest region unless
     * a neighbour's summary promises a sooner first token than home offers (then up to three
     * neighbours, each taking it only if it beats home's offer); a request nobody can take waits
     * in the line expected to start it soonest — the decisions of shared/scheduling/spillover.ts,
     * as edge/region-client/open-job.ts makes them.
     */
    regional?: boolean;
    /**
     * Per region: a job waiting in a region's line moves to another region expected to start it
     * sooner (edge/region/waiting-moves.ts: a pass every WAITING_MOVE_INTERVAL_MS, the first
     * WAITING_MOVE_SCAN waiting jobs, at most WAITING_MOVE_TRIES asks, each neighbour asked to take
     * it only if its real offer beats staying). Off: the policy before, for comparison.
     */
    moveWaiting?: boolean;
    /** See WAITING_MOVE_MARGIN. */
    moveMargin?: number;
    /** See DEFAULT_SPILL_MARGIN. */
    spillMargin?: number;
    /**
     * How old a region's summary may be when read (ms): Region objects report at most once a
     * second (at once when their last idle tab goes) and a Worker isolate reuses a read for a second.
     */
    summaryMaxAgeMs?: number;
    affinity?: boolean;
    /**
     * Upper bounds, not policies (the simulator knows what the coordinator cannot): no protection
     * after a conversation's last turn, or protection scaled by the true chance of another turn
     * (conversations have 5–10 turns). scripts/sim/conversation-frontier.ts measures them.
     */
    oracleLastTurn?: boolean;
    oracleTurnOdds?: boolean;
    name?: string;
    /** Told the estimate each request was placed on at arrival (scripts/geo-tail.ts). */
    onChoice?: (req: SimRequest, estimate: ScoreBreakdown) => void;
  } = {},
): Policy {
  const {
    affinity = true,
    name = "tabgrid",
    moveQueued = true,
    regional = false,
    moveWaiting = true,
    moveMargin = WAITING_MOVE_MARGIN,
    spillMargin = DEFAULT_SPILL_MARGIN,
    summaryMaxAgeMs = 1000,
    oracleLastTurn = false,
    oracleTurnOdds = false,
    onChoice,
    ...schedulerOptions
  } = options;
  const regionCount = regional ? REGION_HINTS.length : 1;
  const schedulers = Array.from(
    { length: regionCount },
    () => new Scheduler({ staleAfterMs: Number.POSITIVE_INFINITY, ...schedulerOptions }),
  );
  /** The region (scheduler and waiting line) a tab belongs to. */
  const home = (i: number) => (regional ? tabs[i]!.region : 0);
  const byId = new Map(tabs.map((t, i) => [t.id, i]));
  const jobIds = new Map<SimRequest, string>();
  const lines = Array.from({ length: regionCount }, () => ({
    waiting: [] as SimRequest[],
    head: 0,
  }));
  const waited = new Set<SimRequest>();
  /** Idle tabs per region (kept for the line below). */
  const idle = new Int32Array(regionCount);
  /** Each region's tabs, and its last summary as the Directory holds it. */
  const regionTabs = Array.from({ length: regionCount }, () => [] as number[]);
  tabs.forEach((_, i) => regionTabs[home(i)]!.push(i));
  const summaries = Array.from({ length: regionCount }, () => ({
    at: Number.NEGATIVE_INFINITY,
    offer: undefined as ModelOffer | undefined,
  }));
  /** Region r's offer now with `waiting` requests in its line (what its report would say). */
  const offerNow = (r: number, waiting: number, nowMs: number): ModelOffer | undefined => {
    const scheduler = schedulers[r]!;
    const all = regionTabs[r]!.map((i) => ({
      tab: scheduler.corrected(tabs[i]!.id)!,
      freeAtMs: scheduler.freeAtMs(tabs[i]!.id),
    }));
    const centre = REGION_CENTRES[REGION_HINTS[r]!];
    return regionOffers(scheduler.index.tabs(), all, waiting, centre, nowMs)[MODEL];
  };
  const summaryOf = (r: number, nowMs: number): ModelOffer | undefined => {
    const s = summaries[r]!;
    if (nowMs - s.at >= summaryMaxAgeMs) {
      const line = lines[r]!;
      s.offer = offerNow(r, line.waiting.length - line.head, nowMs);
      s.at = nowMs;
    }
    return s.offer;
  };

  const record = (i: number): CandidateTab => {
    const t = tabs[i]!;
    return {
      id: t.id,
      location: t.location,
      accessDelayMs: 0, // the socket RTT already contains the tab's last mile
      socketRttMs: t.measuredSocketRttMs,
      queue: { jobsAhead: 0, freeAtMs: 0 },
      prefillTokensPerSec: t.benchPrefill,
      decodeTokensPerSec: t.benchDecode,
      models: [MODEL],
      loadedModels: [MODEL],
      coldLoadMs: 0,
      lastSeenMs: 0,
    };
  };
  tabs.forEach((_, i) => {
    schedulers[home(i)]!.put(record(i), { open: true, busy: false, canQueue: true });
    idle[home(i)]!++;
  });
  const queuedReqs = new Map<string, SimRequest>();
  let jobCount = 0;
  const jobId = (req: SimRequest) => {
    let id = jobIds.get(req);
    if (!id) {
      jobIds.set(req, (id = `job-${jobCount++}`));
      queuedReqs.set(id, req);
    }
    return id;
  };
  const matchOf = (req: SimRequest) => ({
    clientLocation: req.client,
    model: MODEL,
    promptTokens: req.promptTokens,
    maxTokens: req.maxTokens,
    stream: true,
  });
  const regionOrder = (req: SimRequest): number[] =>
    regional ? regionsByDistance(req.client).map((r) => REGION_HINTS.indexOf(r.region)) : [0];

  /**
   * One pass over each region's line, as edge/region/waiting-moves.ts makes it: a waiting job's
   * expected first token if it stays (its region's offer now, with the jobs ahead of it) against
   * the neighbours' summaries; the best one that beats it by the margin is asked, and takes the job
   * (as a continuation, on a tab that can run it now) only if its real offer beats staying.
   */
  const moveWaitingJobs = (nowMs: number, place: (tab: number, req: SimRequest) => void) => {
    for (let r = 0; r < regionCount; r++) {
      const line = lines[r]!;
      const n = line.waiting.length - line.head;
      if (n === 0) continue;
      const here = new Map<number, ModelOffer | undefined>();
      const movedAt: number[] = [];
      let tries = 0;
      for (let i = 0; i < Math.min(n, WAITING_MOVE_SCAN) && tries < WAITING_MOVE_TRIES; i++) {
        const req = line.waiting[line.head + i]!;
        const match = matchOf(req);
        const ahead = i - movedAt.length;
        if (!here.has(ahead)) here.set(ahead, offerNow(r, ahead, nowMs));
        const hereMs = lineEstimateMs(here.get(ahead), match, nowMs);
        const neighbours = regionOrder(req)
          .filter((x) => x !== r)
          .map((x) => ({ region: x, offer: summaryOf(x, nowMs) }));
        const move = waitingMove(rankNeighbours(neighbours, match, nowMs), hereMs, moveMargin);
        if (!move) continue;
        tries++;
        const result = schedulers[move.region]!.choose(match, nowMs);
        if (result.kind !== "match" || result.match.estimate.objectiveMs > move.acceptUpToMs)
          continue; // declined: the job keeps its place
        movedAt.push(line.head + i);
        place(byId.get(result.match.tab.id)!, req);
      }
      for (const at of movedAt.reverse()) line.waiting.splice(at, 1);
    }
  };

  return {
    name,
    ...(regional && moveWaiting ? { tickMs: WAITING_MOVE_INTERVAL_MS, tick: moveWaitingJobs } : {}),
    choose(req, nowMs) {
      const c = req.conversation;
      const match = matchOf(req);
      const order = regionOrder(req);
      const affinityOf = () =>
        affinity && c && c.turn > 0
          ? { key: `${c.id}:${c.turn - 1}`, cachedTokens: c.historyTokens }
          : undefined;
      const homeRegion = order[0]!;
      const homeResult = schedulers[homeRegion]!.choose(match, nowMs, affinityOf());
      const homeMatch = homeResult.kind === "match" ? homeResult.match : null;
      if (!regional) {
        if (homeMatch) onChoice?.(req, homeMatch.estimate);
        if (homeMatch) return byId.get(homeMatch.tab.id)!;
        lines[0]!.waiting.push(req);
        return -1;
      }
      // As edge/region-client/open-job.ts: home takes it unless a neighbour's summary promises
      // better; then the neighbours that beat home's offer, each taking it only if it does.
      const neighbours = order.slice(1).map((r) => ({ region: r, offer: summaryOf(r, nowMs) }));
      const ranked = rankNeighbours(neighbours, match, nowMs);
      const homeMs = homeMatch?.estimate.objectiveMs ?? null;
      if (homeMatch && homeMs! <= homeAcceptUpToMs(ranked, spillMargin))
        return byId.get(homeMatch.tab.id)!;
      const plan = spillPlan(ranked, homeMs, spillMargin);
      for (const r of plan.tries) {
        const result = schedulers[r]!.choose(match, nowMs, affinityOf());
        if (result.kind === "match" && result.match.estimate.objectiveMs <= plan.acceptUpToMs)
          return byId.get(result.match.tab.id)!;
      }
      if (homeMatch) return byId.get(homeMatch.tab.id)!;
      const lineRegion =
        waitRegion(
          order.map((r) => ({ region: r, offer: summaryOf(r, nowMs) })),
          match,
          nowMs,
        ) ?? homeRegion;
      lines[lineRegion]!.waiting.push(req);
      return -1;
    },
    assigned(i, req, nowMs) {
      const s = schedulers[home(i)]!;
      if (s.jobsAhead(tabs[i]!.id) === 0) idle[home(i)]!--;
      const turn = affinity && req.conversation ? { chat: true } : undefined;
      const where = s.assigned(tabs[i]!.id, jobId(req), req, nowMs, matchOf(req), turn);
      if (where === "queue") waited.add(req);
      else waited.delete(req); // moved from a queue to a free tab: timed again
    },
    finished(i, job, nowMs) {
      const id = tabs[i]!.id;
      const scheduler = schedulers[home(i)]!;
      // As edge/region/tab-learning.ts: a job that waited behind another is not timed, and the
      // tab reports its own prefill time (protocol 5).
      if (!waited.delete(job.req)) {
        scheduler.observe(id, {
          clientLocation: job.req.client,
          timedAt: "tab",
          promptTokens: job.prefillTokens, // WebLLM's usage counts the tokens it prefilled
          ttftMs: job.serviceTtftMs,
          prefillMs: job.prefillMs,
          completionTokens: job.req.completionTokens,
          decodeMs: job.decodeMs,
        });
      }
      const c = job.req.conversation;
      // Without affinity the coordinator keeps no memory of conversations.
      if (c && affinity) {
        let held = job.req.promptTokens + job.req.completionTokens;
        if (oracleLastTurn && !job.req.followUp) held = 0;
        if (oracleTurnOdds && c.turn >= 4) held *= (9 - c.turn) / (10 - c.turn);
        scheduler.served(id, `${c.id}:${c.turn}`, held, nowMs);
      }
      scheduler.left(id, jobId(job.req), nowMs, { finished: true });
      queuedReqs.delete(jobId(job.req));
      jobIds.delete(job.req);
      if (scheduler.jobsAhead(id) === 0) idle[home(i)]!++;
      const line = lines[home(i)]!;
      if (line.head >= line.waiting.length) {
        // A tab turning idle takes a job queued behind another tab if it would start it sooner.
        const take = moveQueued ? scheduler.queuedToTake(id, nowMs) : null;
        if (!take) return null;
        const req = queuedReqs.get(take.jobId)!;
        scheduler.left(take.fromTabId, take.jobId, nowMs);
        return req;
      }
      if (scheduler.jobsAhead(id) > 0) return null;
      const next = line.waiting[line.head++]!;
      if (line.head > 1024 && line.head * 2 > line.waiting.length) {
        line.waiting.splice(0, line.head);
        line.head = 0;
      }
      return next;
    },
  };
}
