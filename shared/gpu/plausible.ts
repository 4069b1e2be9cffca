import { DEFAULT_MODELS } from "../models/catalog.js";
import { classFromBandwidth, type GpuClass } from "./classify.js";
import { modelWeightBytes } from "./predict.js";
import { GPU_PROFILES } from "./profiles.js";

/**
 * What a tab's WGSL benchmark can plausibly measure on a GPU of the class (or profile) it claims.
 * A claim is a hint: the coordinator caps it with these before it seeds any speed estimate, and
 * replaces it with what it observes. Bandwidth: a copy kernel cannot beat the vendor's peak, so
 * the cap is the fastest profile of the class (or the named profile's peak) plus a margin.
 * Matmul: the best a WGSL kernel reaches on that class, generously (browsers reach a fraction of
 * the vendor's FP32 peak).
 */

/** Margin over the table's peak (newer parts, overclocked cards, measurement noise). */
export const PLAUSIBLE_MARGIN = 1.25;

const MATMUL_GFLOPS_MAX: Record<GpuClass, number> = {
  high: 60_000,
  mid: 25_000,
  entry: 12_000,
  integrated: 5_000,
  mobile: 3_000,
  software: 500,
  // A tab that does not say what it is gets a middle-of-the-road cap, not the top one.
  unknown: 25_000,
};

function classPeakBandwidth(): Record<GpuClass, number> {
  const out: Record<GpuClass, number> = {
    high: 0,
    mid: 0,
    entry: 0,
    integrated: 0,
    mobile: 0,
    software: 0,
    unknown: 0,
  };
  for (const p of GPU_PROFILES) {
    const cls = p.kind === "software" ? "software" : classFromBandwidth(p.kind, p.bandwidthGBs);
    out[cls] = Math.max(out[cls], p.bandwidthGBs);
  }
  // Class boundaries (classify.ts) bound a class even where the table has no row near the top.
  out.mid = Math.max(out.mid, 600);
  out.entry = Math.max(out.entry, 250);
  out.integrated = Math.max(out.integrated, 100);
  out.unknown = out.mid;
  return out;
}

const CLASS_PEAK = classPeakBandwidth();
const PROFILE_PEAK = new Map(GPU_PROFILES.map((p) => [p.id, p.bandwidthGBs]));

/** The plausible maximum of each benchmark figure for the claimed class and profile. */
export function plausibleBenchmarkMax(
  cls: GpuClass,
  profileId: string | null,
): { bandwidthGBs: number; matmulGflops: number } {
  const classPeak = CLASS_PEAK[cls];
  const profilePeak = profileId ? PROFILE_PEAK.get(profileId) : undefined;
  const peak = profilePeak !== undefined ? Math.min(profilePeak, classPeak) : classPeak;
  return { bandwidthGBs: peak * PLAUSIBLE_MARGIN, matmulGflops: MATMUL_GFLOPS_MAX[cls] };
}

export interface ClaimedBenchmark {
  matmulGflops: number;
  bandwidthGBs: number;
  durationMs: number;
}

/** The claim capped to what is plausible, and whether it had to be. */
export function capBenchmark(
  cls: GpuClass,
  profileId: string | null,
  bench: ClaimedBenchmark,
): { benchmark: ClaimedBenchmark; capped: boolean } {
  const max = plausibleBenchmarkMax(cls, profileId);
  const bandwidthGBs = Math.min(bench.bandwidthGBs, max.bandwidthGBs);
  const matmulGflops = Math.min(bench.matmulGflops, max.matmulGflops);
  return {
    benchmark: { ...bench, bandwidthGBs, matmulGflops },
    capped: bandwidthGBs !== bench.bandwidthGBs || matmulGflops !== bench.matmulGflops,
  };
}

/**
 * The fastest decode any tab can plausibly show, in tokens/s: what the coordinator believes of a
 * job's speed at most (edge/region/region-stats.ts). Two bounds. WebGPU's cost per decoded token
 * (every layer's dispatches, one token at a time): WebLLM's best reported figures are about
 * 100 tokens/s for a 135M model on an Apple M-series GPU and about 40 for a 3B model on an
 * RTX 4090, so DECODE_TPS_MAX is ten times the first. And memory: a decode step reads every weight
 * once, so no tab beats the fastest profile's bandwidth (with PLAUSIBLE_MARGIN) over the model's
 * weight bytes — known for catalog models only: a name a tab chose says nothing about size.
 */
export const DECODE_TPS_MAX = 1000;

const FASTEST_BANDWIDTH_GBS = Math.max(...GPU_PROFILES.map((p) => p.bandwidthGBs));
const DECODE_MAX_BY_MODEL = new Map(
  DEFAULT_MODELS.map((m) => {
    const bytes = modelWeightBytes(m);
    const memoryBound = bytes ? (FASTEST_BANDWIDTH_GBS * PLAUSIBLE_MARGIN * 1e9) / bytes : Infinity;
    return [m.model_id, Math.min(DECODE_TPS_MAX, memoryBound)];
  }),
);

/** The plausible maximum decode speed (tokens/s) of `modelId` on any GPU. */
export function plausibleDecodeMaxTps(modelId: string): number {
  return DECODE_MAX_BY_MODEL.get(modelId) ?? DECODE_TPS_MAX;
}
