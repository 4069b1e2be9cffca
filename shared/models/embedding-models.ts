import type { ModelRecord } from "./catalog.js";

/**
 * Which catalog models are embedding models, and how long their vectors are. WebLLM marks them
 * (`model_type: 1`) but does not record the vector length; the coordinator needs it to check a
 * tab's answer, so the known families are listed here (the length is the model's hidden size, from
 * its Hugging Face config) and an operator's own model states it in `embedding_dimensions`.
 */
const KNOWN_DIMENSIONS: readonly [prefix: string, dimensions: number][] = [
  ["snowflake-arctic-embed-s", 384],
  ["snowflake-arctic-embed-m", 768],
];

export function isEmbeddingModel(record: ModelRecord): boolean {
  return record.model_type === 1;
}

/** The vector length of an embedding model, or null when it is unknown (the model is refused). */
export function embeddingDimensions(record: ModelRecord): number | null {
  if (!isEmbeddingModel(record)) return null;
  if (record.embedding_dimensions !== undefined) return record.embedding_dimensions;
  return KNOWN_DIMENSIONS.find(([prefix]) => record.model_id.startsWith(prefix))?.[1] ?? null;
}
