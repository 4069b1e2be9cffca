import { DEFAULT_MODELS } from "../../shared/models/catalog.js";
import { modelWeightBytes, parameterCount } from "../../shared/gpu/predict.js";
import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import type { Location } from "../../shared/geo/distance.js";
import { CandidateIndex } from "../../shared/scheduling/candidate-index.js";
import { linearBest, withBudget, type MatchResult } from "../../shared/scheduling/linear-scan.js";
import type { CandidateTab, MatchRequest } from "../../shared/scheduling/score.js";
import { SpeedTracker } from "../../shared/scheduling/speed-tracker.js";
import type { TabRecord } from "./tab-registry.js";

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

const modelsById = new Map(DEFAULT_MODELS.map((m) => [m.model_id, m]));

/**
 * The Region object's view of its tabs for matching: each tab as a `CandidateTab` in the
 * geo-indexed `CandidateIndex` (so choosing among many tabs is not a scan), with speeds seeded from
 * the tab's WGSL benchmark and corrected by what the coordinator observes (`SpeedTracker`).
 */
export class TabMatcher {
  private readonly index: CandidateIndex;
  private readonly tracker = new SpeedTracker();
  /** Uncorrected records (benchmark speeds): the tracker learns against these. */
  private readonly raw = new Map<string, CandidateTab>();
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
    this.index = new CandidateIndex({ staleAfterMs });
  }

  /**
   * Put a tab (back) into the index after any change. Tabs that are paused, loading a model or
   * resting after failures (or quarantined) are taken out: they must not be offered work. A tab
   * whose benchmark is not believed (on probation) starts from the speeds of a tab that sent none,
   * and what the coordinator observes corrects them.
   */
  sync(tab: TabRecord, resting: boolean, believeBenchmark = true): void {
    const candidate = this.candidateOf(tab, believeBenchmark && !this.measured.has(tab.tabId));
    this.raw.set(tab.tabId, candidate);
    const available = !resting && (tab.state === "idle" || tab.state === "busy");
    if (available) this.index.upsert(this.tracker.correct(candidate));
    else this.index.remove(tab.tabId);
  }

  remove(tabId: string): void {
    this.index.remove(tabId);
    this.raw.delete(tabId);
    // An anonymous id never comes back; a signed identity keeps its observed speeds.
    if (tabId.startsWith("a_")) this.forgetMeasured(tabId);
  }

  private forgetMeasured(tabId: string): void {
    this.measured.delete(tabId);
    this.tracker.forget(tabId);
  }

  /** Best idle tab for the request, within its latency budget. */
  matchIdle(req: MatchRequest, now: number): MatchResult {
    return withBudget(this.index.best(req, now, true), req);
  }

  /**
   * Best idle tab among those `usable` allows (failover excludes tabs that already failed the
   * job). Failover is rare, so a scan of the region's tabs is fine here.
   */
  matchIdleAmong(req: MatchRequest, now: number, usable: (id: string) => boolean): MatchResult {
    const tabs = [...this.raw.values()]
      .filter((t) => usable(t.id) && this.index.get(t.id) !== undefined)
      .map((t) => this.tracker.correct(t));
    return withBudget(linearBest(tabs, req, now, this.index.staleAfterMs, true), req);
  }

  /** The tab's decode speed as matching currently believes it (tokens/s). */
  decodeSpeed(tabId: string): number {
    const tab = this.raw.get(tabId);
    return tab ? this.tracker.correct(tab).decodeTokensPerSec : UNKNOWN_DECODE_TPS;
  }

  /** The tab's prefill speed as learned from jobs it finished (tokens/s); null before any. */
  observedPrefillSpeed(tabId: string): number | null {
    const tab = this.raw.get(tabId);
    if (!tab || this.tracker.correction(tabId).samples === 0) return null;
    return this.tracker.correct(tab).prefillTokensPerSec;
  }

  /** Learn from a finished job on a tab. */
  observe(
    tabId: string,
    obs: {
      clientLocation: Location;
      promptTokens: number;
      ttftMs: number;
      completionTokens?: number;
      decodeMs?: number;
    },
  ): void {
    let tab = this.raw.get(tabId);
    if (!tab) return;
    if (!this.measured.has(tabId)) {
      // First observation: rebase on the no-claim speeds, so a benchmark believed until now (or
      // later, when the tab leaves probation) never scales what is learned from here on.
      const base = seedSpeeds({ gpu: null }, tab.models[0]);
      tab = { ...tab, decodeTokensPerSec: base.decode, prefillTokensPerSec: base.prefill };
      this.raw.set(tabId, tab);
      this.tracker.forget(tabId);
      this.measured.add(tabId);
      if (this.measured.size > MEASURED_KEPT) {
        const oldest = this.measured.values().next().value;
        if (oldest !== undefined && !this.raw.has(oldest)) this.forgetMeasured(oldest);
      }
    }
    this.tracker.observe(tab, obs);
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
      queue:
        tab.jobId || tab.state === "busy"
          ? { jobsAhead: 1, freeAtMs: tab.busyUntil }
          : { jobsAhead: 0, freeAtMs: 0 },
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
  const record = modelId ? modelsById.get(modelId) : undefined;
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
