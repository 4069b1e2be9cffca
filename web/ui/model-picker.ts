import type { ModelRecord } from "../../shared/models/catalog.js";
import type { ModelEligibility } from "../../shared/models/eligibility.js";
import { fill, h } from "./dom.js";

/**
 * The models this GPU can serve (a picker, best default first) and the ones it cannot, each with
 * the reason, so a contributor sees at a glance what their machine is good for.
 */
export interface ModelPicker {
  selected(): ModelRecord | undefined;
  setDisabled(disabled: boolean): void;
}

function label(m: ModelRecord, recommended: boolean): string {
  const vram = m.vram_required_MB ? ` — ~${Math.round(m.vram_required_MB)} MB VRAM` : "";
  return `${m.model_id}${vram}${recommended ? " (recommended)" : ""}`;
}

export function renderModelPicker(
  region: HTMLElement,
  classified: readonly ModelEligibility[],
): ModelPicker {
  const eligible = classified.filter((e) => e.eligible);
  const excluded = classified.filter((e) => !e.eligible);
  const select = h("select", { id: "model-select", name: "model" });
  for (const e of eligible) {
    select.append(h("option", { value: e.model.model_id }, label(e.model, e.recommended)));
  }
  fill(
    region,
    h("h2", {}, "Models this GPU can serve"),
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
    setDisabled: (disabled) => {
      select.disabled = disabled;
    },
  };
}
