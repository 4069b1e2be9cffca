import type { ModelRecord } from "../models/catalog.js";
import type { GpuClassification } from "./classify.js";

/**
 * Decode speed predictions. Generating one token reads every weight once, so decode is
 * memory-bound: tokens/s ≈ usable bandwidth / weight bytes. These are predictions, labelled as
 * such wherever they are shown; once the tab has served jobs, the ratio of measured to predicted
 * speed corrects every prediction (`speedCorrection`).
 */

/** Share of the bandwidth estimate WebLLM's decode kernels achieve. */
export const DECODE_SHARE_OF_PEAK = 0.5;
export const DECODE_SHARE_OF_MEASURED = 0.8;

/** Bits per weight of MLC quantisation codes (group scales included). */
function bitsPerWeight(modelId: string): number | null {
  const q = /q(\d)f(16|32)(?:_\d)?/.exec(modelId);
  if (!q) return null;
  const bits = Number(q[1]);
  const act = Number(q[2]);
  if (bits === 0) return act; // unquantised
  // One scale per group of 32 weights, stored in the activation type.
  return bits + act / 32;
}

/** Parameter count from the model id ("Qwen2.5-0.5B-Instruct", "SmolLM2-135M"), if it says. */
export function parameterCount(modelId: string): number | null {
  const m = /(?:^|[-_])(\d+(?:\.\d+)?)([bBmM])(?=[-_]|$)/.exec(modelId);
  if (!m) return null;
  return Number(m[1]) * (m[2]!.toLowerCase() === "b" ? 1e9 : 1e6);
}

/**
 * Bytes read per decoded token: parameters × bits per weight, or, when the id does not say, 60 %
 * of the record's VRAM need (the rest is KV cache and activations).
 */
export function modelWeightBytes(model: ModelRecord): number | null {
  const params = parameterCount(model.model_id);
  const bits = bitsPerWeight(model.model_id);
  if (params !== null && bits !== null) return (params * bits) / 8;
  if (model.vram_required_MB) return model.vram_required_MB * 0.6 * 1024 * 1024;
  return null;
}

export interface DecodePrediction {
  modelId: string;
  /** Predicted decode tokens/s; null when there is nothing to base it on. */
  tokensPerSecond: number | null;
  basis: "measured bandwidth" | "typical bandwidth" | "none";
  /** True when the tab's own served jobs corrected the prediction. */
  corrected: boolean;
}

export function predictDecode(
  model: ModelRecord,
  gpu: GpuClassification,
  correction: number | null = null,
): DecodePrediction {
  const bytes = modelWeightBytes(model);
  const measured = gpu.measured?.bandwidthGBs ?? null;
  let usableGBs: number | null = null;
  let basis: DecodePrediction["basis"] = "none";
  if (measured !== null && measured > 0) {
    usableGBs = measured * DECODE_SHARE_OF_MEASURED;
    basis = "measured bandwidth";
  } else if (gpu.bandwidthGBs !== null) {
    usableGBs = gpu.bandwidthGBs * DECODE_SHARE_OF_PEAK;
    basis = "typical bandwidth";
  }
  if (usableGBs === null || bytes === null || bytes <= 0) {
    return { modelId: model.model_id, tokensPerSecond: null, basis: "none", corrected: false };
  }
  const raw = (usableGBs * 1e9) / bytes;
  return {
    modelId: model.model_id,
    tokensPerSecond: correction === null ? raw : raw * correction,
    basis,
    corrected: correction !== null,
  };
}

/**
 * Correction factor from what the tab measured serving a model against what was predicted for it,
 * clamped so one odd job cannot swing every prediction wildly.
 */
export function speedCorrection(measuredTps: number, predictedTps: number): number | null {
  if (!(measuredTps > 0) || !(predictedTps > 0)) return null;
  return Math.min(5, Math.max(0.2, measuredTps / predictedTps));
}

/**
 * "Recommended" on the contributor page: the tab is predicted to decode this model at least this
 * fast. 10 tokens/s is about twice a fast reader's pace, so a client streaming the answer never
 * waits on the tab; slower tabs can still serve, but a client would watch the text crawl. (WebLLM's
 * `low_resource_required` flag says a model is small, not that this GPU is fast enough.)
 */
export const RECOMMENDED_MIN_TOKENS_PER_SECOND = 10;

export function fastEnoughToServe(p: DecodePrediction | undefined): boolean {
  return p?.tokensPerSecond != null && p.tokensPerSecond >= RECOMMENDED_MIN_TOKENS_PER_SECOND;
}
