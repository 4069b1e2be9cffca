import { matchProfile, type GpuKind, type GpuProfile } from "./profiles.js";

/**
 * Classify a contributor's GPU from what WebGPU reports (adapter info, fallback flag) plus, when it
 * has run, the tab's own WGSL micro-benchmark. The class is what the scheduler and the page use to
 * say what the GPU is good for; the profile row supplies typical memory and bandwidth, which a
 * measurement corrects.
 */

export type GpuClass = "high" | "mid" | "entry" | "integrated" | "mobile" | "software" | "unknown";

export const GPU_CLASS_LABEL: Record<GpuClass, string> = {
  high: "high-end GPU",
  mid: "mid-range GPU",
  entry: "entry-level GPU",
  integrated: "integrated graphics",
  mobile: "phone or tablet GPU",
  software: "software renderer (CPU, very slow)",
  unknown: "unknown GPU",
};

/** What the WGSL micro-benchmarks measured in this tab (web/bench/). */
export interface BenchmarkResult {
  /** f32 matrix-multiply throughput, GFLOP/s. */
  matmulGflops: number;
  /** Read+write bandwidth of a streaming copy kernel, GB/s. */
  bandwidthGBs: number;
  /** How long the benchmark ran, ms. */
  durationMs: number;
}

export interface AdapterFacts {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter?: boolean;
}

export interface GpuClassification {
  class: GpuClass;
  kind: GpuKind | null;
  profile: { id: string; name: string } | null;
  /** Typical memory of the profile, GB (not measured: browsers do not report VRAM). */
  typicalMemoryGB: number | null;
  /** The share of that memory a model may use, MB; null when unknown. */
  usableMemoryMB: number | null;
  /** Peak bandwidth estimate used for the class and predictions, GB/s. */
  bandwidthGBs: number | null;
  bandwidthSource: "measured" | "profile" | null;
  measured: BenchmarkResult | null;
  notes: string[];
}

/**
 * A short copy kernel in a browser reaches roughly this share of the vendor's peak bandwidth, so
 * measured / MEASURED_SHARE_OF_PEAK estimates the peak of an unknown GPU.
 */
export const MEASURED_SHARE_OF_PEAK = 0.6;

const USABLE_SHARE: Record<GpuKind, number> = {
  discrete: 0.9,
  // macOS lets the GPU wire about two thirds of unified memory by default.
  unified: 0.65,
  integrated: 0.5,
  mobile: 0.4,
  software: 0,
};

export function classFromBandwidth(kind: GpuKind | null, peakGBs: number): GpuClass {
  if (kind === "software") return "software";
  if (kind === "mobile") return "mobile";
  if (peakGBs >= 600) return "high";
  if (peakGBs >= 250) return "mid";
  if (peakGBs >= 100 || kind === "discrete") return "entry";
  return "integrated";
}

export function classifyGpu(
  adapter: AdapterFacts,
  benchmark: BenchmarkResult | null = null,
): GpuClassification {
  const profile: GpuProfile | undefined = adapter.isFallbackAdapter
    ? matchProfile({ vendor: "", architecture: "swiftshader", description: "" })
    : matchProfile(adapter);
  const kind = profile?.kind ?? null;
  const notes: string[] = [];
  const measuredPeak =
    benchmark && benchmark.bandwidthGBs > 0
      ? benchmark.bandwidthGBs / MEASURED_SHARE_OF_PEAK
      : null;

  let bandwidth: number | null = profile?.bandwidthGBs ?? null;
  let source: GpuClassification["bandwidthSource"] = profile ? "profile" : null;
  if (measuredPeak !== null) {
    if (!profile) {
      bandwidth = measuredPeak;
      source = "measured";
      notes.push("GPU not in the profile table: class from the measured bandwidth.");
    } else if (measuredPeak < 0.5 * profile.bandwidthGBs && kind !== "software") {
      bandwidth = measuredPeak;
      source = "measured";
      notes.push(
        `Measured bandwidth is well below a typical ${profile.name} (laptop variant, power saving or throttling?).`,
      );
    }
  }

  const cls: GpuClass =
    kind === "software"
      ? "software"
      : bandwidth === null
        ? "unknown"
        : classFromBandwidth(kind, bandwidth);
  const typical = profile?.memoryGB ?? null;
  const usable =
    typical !== null && kind !== null && kind !== "software"
      ? Math.round(typical * 1024 * USABLE_SHARE[kind])
      : null;
  if (kind === "software")
    notes.push("Software WebGPU: the CPU does the work; models run very slowly.");
  return {
    class: cls,
    kind,
    profile: profile ? { id: profile.id, name: profile.name } : null,
    typicalMemoryGB: typical,
    usableMemoryMB: usable,
    bandwidthGBs: bandwidth,
    bandwidthSource: source,
    measured: benchmark,
    notes,
  };
}
