import { z } from "zod";
import { ModelIdSchema } from "./model-id.js";
import prebuilt from "./webllm-prebuilt.json" with { type: "json" };

/**
 * The model catalog is data: WebLLM `ModelRecord`s (weights URL, model library URL, VRAM need,
 * f16 need). Defaults are WebLLM's prebuilt list (generated into webllm-prebuilt.json by
 * scripts/gen-catalog.mjs); operators add self-hosted models through the `EXTRA_MODELS` variable
 * (a JSON array of records) without code changes. A later record with the same id replaces an
 * earlier one, so an operator can also override a default.
 */
export const ModelRecordSchema = z.object({
  model: z.url(),
  /** A model id (model-id.ts): tabs announce it, and only such names may be announced. */
  model_id: ModelIdSchema,
  model_lib: z.url(),
  vram_required_MB: z.number().positive().optional(),
  low_resource_required: z.boolean().optional(),
  buffer_size_required_bytes: z.number().positive().optional(),
  required_features: z.array(z.string()).optional(),
  overrides: z.object({ context_window_size: z.number().int().positive().optional() }).optional(),
  /** WebLLM's `ModelType`: absent or 0 a language model, 1 an embedding model (2, VLM: not served). */
  model_type: z.union([z.literal(0), z.literal(1)]).optional(),
  /**
   * Tabgrid's: the length of an embedding model's vectors, for models embedding-models.ts does not
   * know (an operator's own); the coordinator refuses answers of any other length.
   */
  embedding_dimensions: z.number().int().positive().max(4096).optional(),
});
export type ModelRecord = z.infer<typeof ModelRecordSchema>;

export const CatalogSchema = z.array(ModelRecordSchema);

export const DEFAULT_MODELS: readonly ModelRecord[] = CatalogSchema.parse(prebuilt);

const defaultsById = new Map(DEFAULT_MODELS.map((m) => [m.model_id, m]));

/** WebLLM's prebuilt record of `modelId`, if it is one. */
export function defaultModel(modelId: string): ModelRecord | undefined {
  return defaultsById.get(modelId);
}

/** Merge operator records over the defaults, keeping order; later ids replace earlier ones. */
export function buildCatalog(
  defaults: readonly ModelRecord[],
  extra: readonly ModelRecord[],
): ModelRecord[] {
  const byId = new Map<string, ModelRecord>();
  for (const r of [...defaults, ...extra]) byId.set(r.model_id, r);
  return [...byId.values()];
}

/**
 * Parse the EXTRA_MODELS configuration. Invalid configuration is an operator error: report it
 * with the offending record instead of silently dropping models.
 */
export function parseExtraModels(
  raw: string | undefined,
): { ok: true; records: ModelRecord[] } | { ok: false; error: string } {
  if (!raw || !raw.trim()) return { ok: true, records: [] };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, error: "EXTRA_MODELS is not valid JSON" };
  }
  const parsed = CatalogSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return { ok: false, error: `EXTRA_MODELS[${i?.path.join(".")}]: ${i?.message}` };
  }
  return { ok: true, records: parsed.data };
}

/** A model needs shader-f16 when its weights or activations are f16 (WebLLM's own rule). */
export function needsShaderF16(record: ModelRecord): boolean {
  return (
    (record.required_features ?? []).includes("shader-f16") || /q\d+f16|q0f16/.test(record.model_id)
  );
}
