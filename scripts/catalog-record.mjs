// The fields of a WebLLM ModelRecord that Tabgrid keeps (see shared/models/catalog.ts).
export function fromWebLLMRecord(r) {
  const out = { model: r.model, model_id: r.model_id, model_lib: r.model_lib };
  if (r.vram_required_MB !== undefined) out.vram_required_MB = r.vram_required_MB;
  if (r.low_resource_required !== undefined) out.low_resource_required = r.low_resource_required;
  if (r.buffer_size_required_bytes !== undefined)
    out.buffer_size_required_bytes = r.buffer_size_required_bytes;
  if (r.required_features !== undefined) out.required_features = r.required_features;
  if (r.overrides?.context_window_size !== undefined)
    out.overrides = { context_window_size: r.overrides.context_window_size };
  // Embedding models (WebLLM's ModelType.embedding) must reach WebLLM marked as such.
  if (r.model_type === 1) out.model_type = 1;
  return out;
}
