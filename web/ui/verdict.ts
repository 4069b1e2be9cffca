import { GPU_CLASS_LABEL, type GpuClassification } from "../../shared/gpu/classify.js";
import {
  RECOMMENDED_MIN_TOKENS_PER_SECOND,
  type DecodePrediction,
} from "../../shared/gpu/predict.js";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { predictionText } from "./model-picker.js";

/**
 * The GPU's verdict in one line, the first thing on the page: what this GPU is, and whether it is
 * predicted fast enough to serve (≥ RECOMMENDED_MIN_TOKENS_PER_SECOND) — with the chosen model and
 * its predicted speed, labelled as a prediction.
 */
export function verdictText(
  c: GpuClassification,
  chosen: ModelRecord | undefined,
  prediction: DecodePrediction | undefined,
  recommendedCount: number,
): string {
  const gpu = `Your GPU (${c.profile?.name ?? GPU_CLASS_LABEL[c.class]})`;
  if (!chosen) return `${gpu} cannot run any model in the catalog.`;
  const speed = predictionText(prediction).replace(/^ — /, "");
  if (recommendedCount > 0) {
    return `${gpu} can serve ${recommendedCount} model${recommendedCount === 1 ? "" : "s"} at useful speed; ready to serve ${chosen.model_id}${speed ? ` (${speed})` : ""}.`;
  }
  return `${gpu} can run ${chosen.model_id}, but slowly${speed ? ` (${speed})` : ""}: below the ${RECOMMENDED_MIN_TOKENS_PER_SECOND} tok/s we recommend for serving. You can still contribute.`;
}
