import type { ModelRecord } from "../../shared/models/catalog.js";
import { isEmbeddingModel } from "../../shared/models/embedding-models.js";
import type { ModelEligibility } from "../../shared/models/eligibility.js";
import { EMBED_MAX_VRAM_MB } from "../../shared/protocol/embed-messages.js";

/**
 * The model an embedded tab serves: browsers partition storage per top-level site, so a model
 * downloaded here is not shared with the full contributor page or other sites. Only small models
 * (≤ EMBED_MAX_VRAM_MB) are served by default; a site's list narrows the choice, in its order.
 * Without a list, the smallest recommended model wins (shortest download for a visitor).
 */
export function chooseEmbedModel(
  classified: readonly ModelEligibility[],
  allowed: readonly string[],
): ModelRecord | null {
  const small = classified
    .filter((e) => e.eligible && (e.model.vram_required_MB ?? Infinity) <= EMBED_MAX_VRAM_MB)
    .map((e) => e as Extract<ModelEligibility, { eligible: true }>);
  if (allowed.length) {
    for (const id of allowed) {
      const hit = small.find((e) => e.model.model_id === id);
      if (hit) return hit.model;
    }
    return null;
  }
  // Without a list, a chat model: an embedding model is served only when a site names it.
  const chat = small.filter((e) => !isEmbeddingModel(e.model));
  const pool = chat.some((e) => e.recommended) ? chat.filter((e) => e.recommended) : chat;
  const sorted = [...pool].sort(
    (a, b) => (a.model.vram_required_MB ?? 0) - (b.model.vram_required_MB ?? 0),
  );
  return sorted[0]?.model ?? null;
}
