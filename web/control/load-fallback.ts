import type { ModelRecord } from "../../shared/models/catalog.js";
import { isEmbeddingModel } from "../../shared/models/embedding-models.js";
import { EngineError } from "../engine/inference-engine.js";

/**
 * Start with the chosen model; if it does not fit in GPU memory (out_of_memory on load), fall back
 * to the next smaller eligible model, telling the contributor why, up to `maxAttempts` models.
 * Any other failure is rethrown as it is.
 */
export async function startWithFallback(
  chosen: ModelRecord,
  eligible: readonly ModelRecord[],
  start: (model: ModelRecord) => Promise<void>,
  notify: (message: string) => void,
  maxAttempts = 3,
): Promise<ModelRecord> {
  let model = chosen;
  for (let attempt = 1; ; attempt++) {
    try {
      await start(model);
      return model;
    } catch (err) {
      if (!(err instanceof EngineError) || err.code !== "out_of_memory") throw err;
      const next = smallerThan(model, eligible);
      if (!next || attempt >= maxAttempts) throw err;
      notify(
        `${model.model_id} did not fit in this GPU's memory; trying the smaller ${next.model_id} instead.`,
      );
      model = next;
    }
  }
}

/**
 * The largest eligible model that needs less VRAM than `model` (so the fallback stays useful), of
 * the same kind: a chat model never falls back to an embedding model, nor the other way round.
 */
export function smallerThan(
  model: ModelRecord,
  eligible: readonly ModelRecord[],
): ModelRecord | undefined {
  const need = model.vram_required_MB ?? Infinity;
  return eligible
    .filter(
      (m) =>
        m.model_id !== model.model_id &&
        isEmbeddingModel(m) === isEmbeddingModel(model) &&
        (m.vram_required_MB ?? Infinity) < need,
    )
    .sort((a, b) => (b.vram_required_MB ?? 0) - (a.vram_required_MB ?? 0))[0];
}
