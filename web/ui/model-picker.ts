import type { ModelRecord } from "../../shared/models/catalog.js";
import {
  fastEnoughToServe,
  RECOMMENDED_MIN_TOKENS_PER_SECOND,
  type DecodePrediction,
} from "../../shared/gpu/predict.js";
import { isEmbeddingModel } from "../../shared/models/embedding-models.js";
import type { ModelEligibility } from "../../shared/models/eligibility.js";
import { fill, h } from "./dom.js";

/**
 * The models this GPU can serve (a picker, best default first) and the ones it cannot, each with
 * the reason, so a contributor sees at a glance what their machine is good for. "(recommended)"
 * marks a model this tab is predicted to decode at ≥ RECOMMENDED_MIN_TOKENS_PER_SECOND
 * (shared/gpu/predict.ts); the first recommended model is preselected.
 */
export interface ModelPicker {
  selected(): ModelRecord | undefined;
  /** Eligible models, best default first (the out-of-memory fallback picks among them). */
  eligible: ModelRecord[];
  setDisabled(disabled: boolean): void;
  /** Re-label with new decode predictions (after a benchmark or served jobs). */
  setPredictions(predict: Predict): void;
  /** Eligible models predicted fast enough to serve, in the picker's order. */
  recommended(): ModelRecord[];
  /** The picker's <select>, for listeners (the page's verdict follows the choice). */
  readonly select: HTMLSelectElement;
}

export type Predict = (m: ModelRecord) => DecodePrediction;

export function predictionText(p: DecodePrediction | undefined): string {
  if (!p || p.tokensPerSecond === null) return "";
  const tps = p.tokensPerSecond;
  const n = tps >= 10 ? Math.round(tps).toString() : tps >= 1 ? tps.toFixed(1) : tps.toFixed(2);
  return ` — predicted ~${n} tok/s`;
}

function label(m: ModelRecord, prediction: DecodePrediction | undefined): string {
  const vram = m.vram_required_MB ? ` — ~${Math.round(m.vram_required_MB)} MB VRAM` : "";
  // An embedding model decodes nothing: a tokens/s prediction would say nothing about it.
  if (isEmbeddingModel(m)) return `${m.model_id}${vram} — embeddings (/v1/embeddings)`;
  const recommended = fastEnoughToServe(prediction) ? " (recommended)" : "";
  return `${m.model_id}${vram}${predictionText(prediction)}${recommended}`;
}

export function renderModelPicker(
  region: HTMLElement,
  classified: readonly ModelEligibility[],
  predict?: Predict,
): ModelPicker {
  const eligible = classified.filter((e) => e.eligible);
  const excluded = classified.filter((e) => !e.eligible);
  const select = h("select", { id: "model-select", name: "model" });
  let current = predict;
  const fast = () =>
    eligible
      .filter((e) => !isEmbeddingModel(e.model) && fastEnoughToServe(current?.(e.model)))
      .map((e) => e.model);
  for (const e of eligible) {
    select.append(h("option", { value: e.model.model_id }, label(e.model, predict?.(e.model))));
  }
  const firstFast = fast()[0];
  if (firstFast) select.value = firstFast.model_id;
  fill(
    region,
    h("h2", {}, "Models this GPU can serve"),
    h(
      "p",
      { class: "hint" },
      `Speeds are predictions from memory bandwidth (decoding reads every weight once per token), not measurements; they are corrected by what this tab measures while serving. "Recommended" means predicted at ${RECOMMENDED_MIN_TOKENS_PER_SECOND} tokens/s or faster, about twice reading speed, so clients never wait on this tab.`,
    ),
    eligible.length
      ? h(
          "p",
          {},
          h("label", { for: "model-select" }, "Model to serve: "),
          select,
          h(
            "span",
            { class: "count", "data-eligible-count": eligible.length },
            ` ${eligible.length} eligible`,
          ),
        )
      : h("p", { class: "problem", role: "alert" }, "None of the catalog's models fit this GPU."),
    excluded.length
      ? h(
          "details",
          {},
          h("summary", {}, `${excluded.length} models this GPU cannot serve`),
          h(
            "ul",
            { id: "excluded-models" },
            ...excluded.map((e) =>
              h(
                "li",
                { "data-model": e.model.model_id },
                h("code", {}, e.model.model_id),
                ": ",
                e.eligible ? "" : e.detail,
              ),
            ),
          ),
        )
      : null,
  );
  const byId = new Map(eligible.map((e) => [e.model.model_id, e.model]));
  return {
    selected: () => byId.get(select.value),
    eligible: eligible.map((e) => e.model),
    select,
    recommended: fast,
    setPredictions(next) {
      current = next;
      for (const e of eligible) {
        const option = [...select.options].find((o) => o.value === e.model.model_id);
        if (option) option.textContent = label(e.model, next(e.model));
      }
      select.dispatchEvent(new Event("change"));
    },
    setDisabled: (disabled) => {
      select.disabled = disabled;
    },
  };
}
