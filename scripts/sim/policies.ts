import { haversineKm } from "../../shared/geo/distance.js";
import { CandidateIndex } from "../../shared/scheduling/candidate-index.js";
import type { Rng } from "../../shared/scheduling/prng.js";
import type { CandidateTab } from "../../shared/scheduling/score.js";
import { SpeedTracker } from "../../shared/scheduling/speed-tracker.js";
import { trueNetworkMs, type SimRequest, type SimTab } from "./population.js";

/**
 * Routing policies compared by bench:geo. Each sees only what a coordinator could know — which
 * jobs it assigned and which have finished — except the oracle, which reads the ground truth.
 */

/** What the coordinator learns when a job finishes on a tab. */
export interface FinishedJob {
  req: SimRequest;
  /** Dispatch to first token, without the time spent waiting behind other jobs. */
  serviceTtftMs: number;
  prefillMs: number;
  decodeMs: number;
}

export interface Policy {
  readonly name: string;
  choose(req: SimRequest, nowMs: number): number;
  assigned(tab: number, req: SimRequest, nowMs: number): void;
  finished(tab: number, job: FinishedJob, nowMs: number): void;
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
    finished: () => {},
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
    finished: (tab) => load.finished(tab),
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
    finished: () => {},
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
    finished: (tab) => load.finished(tab),
  };
}

/** Knows every true round trip, speed and queue: minimises the true TTFT of each request. */
export function oraclePolicy(tabs: readonly SimTab[], trueFreeAt: Float64Array): Policy {
  return {
    name: "oracle",
    choose(req, nowMs) {
      let best = 0;
      let bestMs = Infinity;
      for (let i = 0; i < tabs.length; i++) {
        const tab = tabs[i]!;
        const ms =
          trueNetworkMs(req, tab) +
          Math.max(0, trueFreeAt[i]! - nowMs) +
          (req.promptTokens * 1000) / tab.truePrefill;
        if (ms < bestMs) [best, bestMs] = [i, ms];
      }
      return best;
    },
    assigned: () => {},
    finished: () => {},
  };
}

const MODEL = "sim-3b";

/**
 * Tabgrid's scheduler, using the shared code itself: the candidate index over estimated records
 * (benchmark speeds, measured socket RTT), corrected by the speed tracker from finished jobs.
 */
export function tabgridPolicy(tabs: readonly SimTab[], idlePreference?: number): Policy {
  const index = new CandidateIndex({
    staleAfterMs: Number.POSITIVE_INFINITY,
    ...(idlePreference === undefined ? {} : { idlePreference }),
  });
  const tracker = new SpeedTracker();
  const byId = new Map(tabs.map((t, i) => [t.id, i]));
  const jobsAhead = new Int32Array(tabs.length);
  const freeAt = new Float64Array(tabs.length);
  const pendingEstimates: number[][] = tabs.map(() => []);

  const raw = (i: number, nowMs: number): CandidateTab => {
    const t = tabs[i]!;
    return {
      id: t.id,
      location: t.location,
      accessDelayMs: 0, // the socket RTT already contains the tab's last mile
      socketRttMs: t.measuredSocketRttMs,
      queue: { jobsAhead: jobsAhead[i]!, freeAtMs: freeAt[i]! },
      prefillTokensPerSec: t.benchPrefill,
      decodeTokensPerSec: t.benchDecode,
      models: [MODEL],
      loadedModels: [MODEL],
      coldLoadMs: 0,
      lastSeenMs: nowMs,
    };
  };
  const refresh = (i: number, nowMs: number) => index.upsert(tracker.correct(raw(i, nowMs)));
  tabs.forEach((_, i) => refresh(i, 0));

  return {
    name: "tabgrid",
    choose(req, nowMs) {
      const result = index.match(
        {
          clientLocation: req.client,
          model: MODEL,
          promptTokens: req.promptTokens,
          maxTokens: req.maxTokens,
          stream: true,
        },
        nowMs,
      );
      if (result.kind !== "match") throw new Error(`tabgrid: ${result.kind}`);
      return byId.get(result.match.tab.id)!;
    },
    assigned(i, req, nowMs) {
      const est = index.get(tabs[i]!.id)!;
      // The queue estimate assumes the job runs to max_tokens: an upper bound, because under-
      // estimating the wait behind an answer that runs long is what hurts the p95 (measured: the
      // average answer length, 0.65 × max_tokens here, gave a p95 4× the oracle's at 30% load).
      const serviceMs =
        (req.promptTokens * 1000) / est.prefillTokensPerSec +
        (req.maxTokens * 1000) / est.decodeTokensPerSec;
      freeAt[i] = (jobsAhead[i]! > 0 ? Math.max(nowMs, freeAt[i]!) : nowMs) + serviceMs;
      jobsAhead[i]!++;
      pendingEstimates[i]!.push(serviceMs);
      refresh(i, nowMs);
    },
    finished(i, job, nowMs) {
      jobsAhead[i]!--;
      pendingEstimates[i]!.shift();
      freeAt[i] = nowMs + pendingEstimates[i]!.reduce((s, ms) => s + ms, 0);
      tracker.observe(raw(i, nowMs), {
        clientLocation: job.req.client,
        promptTokens: job.req.promptTokens,
        ttftMs: job.serviceTtftMs,
        prefillMs: job.prefillMs,
        completionTokens: job.req.completionTokens,
        decodeMs: job.decodeMs,
      });
      refresh(i, nowMs);
    },
  };
}
