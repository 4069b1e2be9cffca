import { defaultModel } from "../../shared/models/catalog.js";
import { modelWeightBytes, parameterCount } from "../../shared/gpu/predict.js";
import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { chooseHedge, type HedgePolicy } from "../../shared/scheduling/hedging.js";
import type { Match, MatchResult } from "../../shared/scheduling/linear-scan.js";
import { Scheduler, type Affinity, type JobSize } from "../../shared/scheduling/scheduler.js";
import type { CandidateTab, MatchRequest } from "../../shared/scheduling/score.js";
import type { Observation } from "../../shared/scheduling/speed-tracker.js";
import {
  regionOffers,
  type RegionOffers,
  type TabFreeAt,
} from "../../shared/scheduling/spillover.js";
import type { Location } from "../../shared/geo/distance.js";
import type { TabRecord } from "./tab-registry.js";
import { isAnonymous } from "../../shared/trust/anonymous.js";

/** Speeds assumed for a tab that sent no benchmark, until the tracker learns its real ones. */
const UNKNOWN_DECODE_TPS = 8;
const UNKNOWN_PREFILL_TPS = 150;
/** Share of the measured WGSL matmul rate a WebLLM prefill reaches (2 FLOPs per weight). */
const PREFILL_SHARE_OF_MATMUL = 0.3;
/** Share of measured memory bandwidth a decode step reaches (shared/gpu/predict.ts). */
const DECODE_SHARE_OF_BANDWIDTH = 0.8;
const DEFAULT_SOCKET_RTT_MS = 50;
/** Identities whose observed speeds are kept across reconnects (oldest forgotten first). */
const MEASURED_KEPT = 10_000;

/**
 * The Region object's side of the scheduling policy (shared/scheduling/scheduler.ts, which
 * bench:geo drives too): each tab as a `CandidateTab`, with speeds seeded from the tab's WGSL
 * benchmark and corrected by what the coordinator observes, and the jobs the region put on it —
 * running, and at most one queued behind for tabs that speak protocol 5.
 */
export class TabMatcher {
  private readonly scheduler: Scheduler;
  /**
   * Tabs whose speed the coordinator has observed. From the first observation on, a tab's speeds
   * are learned against the no-claim base and its benchmark (a claim) is never believed again, on
   * probation or after; a signed identity keeps what was learned across reconnects.
   */
  private readonly measured = new Set<string>();

  constructor(
    private readonly region: RegionHint,
    staleAfterMs: number,
  ) {
    this.scheduler = new Scheduler({ staleAfterMs });
  }

  /**
   * Put a tab (back) into the index after any change. Tabs that are paused, loading a model or
   * resting after failures (or quarantined) are taken out: they must not be offered work. A tab
   * whose benchmark is not believed (on probation) starts from the speeds of a tab that sent none,
   * and what the coordinator observes corrects them.
   */
  sync(tab: TabRecord, resting: boolean, believeBenchmark = true): void {
    const s = this.scheduler;
    // Jobs the scheduler counts that the tab no longer holds (moved, cancelled, ended elsewhere).
    for (const id of s.jobIds(tab.tabId)) {
      if (id !== tab.jobId && id !== tab.queuedJobId) s.left(tab.tabId, id, Date.now());
    }
    s.put(this.candidateOf(tab, believeBenchmark && !this.measured.has(tab.tabId)), {
      open: !resting && (tab.state === "idle" || tab.state === "busy"),
      busy: tab.state === "busy" || tab.jobId !== null,
      canQueue: tab.protocol >= QUEUE_SINCE_PROTOCOL,
    });
  }

  remove(tabId: string): void {
    // An anonymous id never comes back; a signed identity keeps its observed speeds.
    const keep = !isAnonymous(tabId) && this.measured.has(tabId);
    this.scheduler.remove(tabId, { keepLearned: keep });
    if (!keep) this.measured.delete(tabId);
  }

  /**
   * The tab for a new request (idle, or busy with room to queue it; for a follow-up turn possibly
   * the one holding its history), within its latency budget.
   */
  match(req: MatchRequest, now: number, affinity: Affinity | null = null): MatchResult {
    return this.scheduler.choose(req, now, affinity ?? undefined);
  }

  /** A second tab to race a new job on (shared/scheduling/hedging.ts), or null. */
  hedgeFor(req: MatchRequest, now: number, chosen: Match, policy?: HedgePolicy): Match | null {
    return chooseHedge(this.scheduler, req, now, chosen, policy);
  }

  /** The tab's engine now holds this conversation (a hash) of `heldTokens` tokens. */
  served(tabId: string, conversationKey: string, heldTokens: number, now: number): void {
    this.scheduler.served(tabId, conversationKey, heldTokens, now);
  }

  /** The conversation (a hash) the tab's engine holds, if known: reported by a shard (shard-figures.ts). */
  holding(tabId: string): string | null {
    return this.scheduler.holding(tabId);
  }

  /** The same among the tabs `usable` allows (failover, probation). */
  matchAmong(req: MatchRequest, now: number, usable: (id: string) => boolean): MatchResult {
    return this.scheduler.chooseAmong(req, now, usable);
  }

  /**
   * A job was put on the tab: "run" when the tab was free, "queue" when it waits its turn.
   * `turn.chat`: a chat turn whose answer the engine will hold (protected while it runs).
   */
  assigned(
    tabId: string,
    jobId: string,
    job: JobSize,
    now: number,
    req?: MatchRequest,
    turn?: { chat: boolean },
  ): "run" | "queue" {
    return this.scheduler.assigned(tabId, jobId, job, now, req, turn);
  }

  /** A job queued behind another tab that this idle tab would start sooner, if any. */
  queuedToTake(tabId: string, now: number): { jobId: string; fromTabId: string } | null {
    return this.scheduler.queuedToTake(tabId, now);
  }

  /** A job left the tab; returns the queued job that starts in its place, if any. */
  left(tabId: string, jobId: string, now: number, opts?: { finished?: boolean }): string | null {
    return this.scheduler.left(tabId, jobId, now, opts);
  }

  /** When the job started on the tab: its dispatch, or when the job ahead of it left. */
  startedAt(tabId: string, jobId: string): number | null {
    return this.scheduler.startedAt(tabId, jobId);
  }

  /** When the work on the tab is expected to be done (0 when it has none). */
  freeAtMs(tabId: string): number {
    return this.scheduler.freeAtMs(tabId);
  }

  /**
   * What a new request could get here, for the Directory's summary (spillover between regions):
   * the offered tabs as matching sees them, and when the line would start one more request.
   */
  offers(
    serving: Iterable<TabRecord>,
    waiting: number,
    centre: Location,
    now: number,
    rank?: (model: string, tabs: number) => number,
  ): RegionOffers {
    const all: TabFreeAt[] = [];
    for (const t of serving) {
      const tab = this.scheduler.corrected(t.tabId);
      if (tab) all.push({ tab, freeAtMs: this.scheduler.freeAtMs(t.tabId) });
    }
    return regionOffers(this.scheduler.index.tabs(), all, waiting, centre, now, rank);
  }

  /** The tab's decode speed as matching currently believes it (tokens/s). */
  decodeSpeed(tabId: string): number {
    return this.scheduler.corrected(tabId)?.decodeTokensPerSec ?? UNKNOWN_DECODE_TPS;
  }

  /** The tab's prefill speed as learned from jobs it finished (tokens/s); null before any. */
  observedPrefillSpeed(tabId: string): number | null {
    if (this.scheduler.samples(tabId) === 0) return null;
    return this.scheduler.corrected(tabId)?.prefillTokensPerSec ?? null;
  }

  /** Learn from a finished job on a tab. */
  observe(tabId: string, obs: Observation): void {
    const tab = this.scheduler.raw(tabId);
    if (!tab) return;
    if (!this.measured.has(tabId)) {
      // First observation: rebase on the no-claim speeds, so a benchmark believed until now (or
      // later, when the tab leaves probation) never scales what is learned from here on.
      this.scheduler.rebase(tabId, seedSpeeds({ gpu: null }, tab.models[0]));
      this.measured.add(tabId);
      if (this.measured.size > MEASURED_KEPT) {
        const oldest = this.measured.values().next().value;
        if (oldest !== undefined && !this.scheduler.raw(oldest)) {
          this.measured.delete(oldest);
          this.scheduler.forgetLearned(oldest);
        }
      }
    }
    this.scheduler.observe(tabId, obs);
  }

  private candidateOf(tab: TabRecord, believeBenchmark: boolean): CandidateTab {
    const model = tab.models[0];
    const speeds = seedSpeeds(believeBenchmark ? tab : { gpu: null }, model);
    return {
      id: tab.tabId,
      location:
        tab.lat !== null && tab.lon !== null
          ? { lat: tab.lat, lon: tab.lon }
          : REGION_CENTRES[this.region],
      accessDelayMs: 0,
      socketRttMs: tab.rttMs ?? DEFAULT_SOCKET_RTT_MS,
      queue: { jobsAhead: 0, freeAtMs: 0 }, // the scheduler keeps the queue
      prefillTokensPerSec: speeds.prefill,
      decodeTokensPerSec: speeds.decode,
      models: tab.models,
      loadedModels: tab.models,
      coldLoadMs: 0,
      lastSeenMs: tab.lastSeen,
    };
  }
}

/** Starting speeds from the tab's benchmark for the model it serves (a prediction, then learned). */
export function seedSpeeds(
  tab: Pick<TabRecord, "gpu">,
  modelId: string | undefined,
): { decode: number; prefill: number } {
  const bench = tab.gpu?.benchmark;
  const record = modelId ? defaultModel(modelId) : undefined;
  const bytes = record ? modelWeightBytes(record) : null;
  const params = modelId ? parameterCount(modelId) : null;
  const decode =
    bench && bench.bandwidthGBs > 0 && bytes
      ? (bench.bandwidthGBs * 1e9 * DECODE_SHARE_OF_BANDWIDTH) / bytes
      : UNKNOWN_DECODE_TPS;
  const prefill =
    bench && bench.matmulGflops > 0 && params
      ? (bench.matmulGflops * 1e9 * PREFILL_SHARE_OF_MATMUL) / (2 * params)
      : UNKNOWN_PREFILL_TPS;
  return { decode, prefill };
}
