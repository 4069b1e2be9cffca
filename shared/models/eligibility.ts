import { needsShaderF16, type ModelRecord } from "./catalog.js";
import { isEmbeddingModel } from "./embedding-models.js";

/**
 * Which catalog models a contributor's GPU can serve. Pure (no DOM, no WebGPU objects): the page
 * reads the adapter's features and limits and passes the numbers in, so this rule is the same in
 * the tab, in the coordinator and in tests.
 */

/** The parts of a WebGPU adapter that decide eligibility. */
export interface GpuCapabilities {
  shaderF16: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /**
   * Memory a model may use, MB, from the GPU profile's *typical* figure (browsers do not report
   * VRAM); undefined or null when unknown, and then no model is excluded for memory.
   */
  usableMemoryMB?: number | null;
  /** Name of the profile the memory figure comes from, for the reason text. */
  profileName?: string | null;
}

export type ExclusionReason = "needs_shader_f16" | "buffer_too_small" | "insufficient_vram";

export type ModelEligibility =
  | {
      model: ModelRecord;
      eligible: true;
      /** Small enough for most GPUs (WebLLM's `low_resource_required`): a safe first choice. */
      recommended: boolean;
    }
  | { model: ModelRecord; eligible: false; reason: ExclusionReason; detail: string };

function mib(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MiB`;
}

export function classifyModel(model: ModelRecord, gpu: GpuCapabilities): ModelEligibility {
  if (needsShaderF16(model) && !gpu.shaderF16) {
    return {
      model,
      eligible: false,
      reason: "needs_shader_f16",
      detail: "needs the shader-f16 feature, which this GPU lacks (pick a q4f32 variant)",
    };
  }
  const needed = model.buffer_size_required_bytes;
  if (needed !== undefined && needed > gpu.maxStorageBufferBindingSize) {
    return {
      model,
      eligible: false,
      reason: "buffer_too_small",
      detail: `needs ${mib(needed)} storage buffers; this GPU allows ${mib(gpu.maxStorageBufferBindingSize)}`,
    };
  }
  const vram = model.vram_required_MB;
  if (vram !== undefined && gpu.usableMemoryMB != null && vram > gpu.usableMemoryMB) {
    const gb = (mb: number) => `${(mb / 1024).toFixed(1)} GB`;
    return {
      model,
      eligible: false,
      reason: "insufficient_vram",
      detail: `needs ~${gb(vram)} of GPU memory; a typical ${gpu.profileName ?? "GPU of this kind"} can give a model about ${gb(gpu.usableMemoryMB)}`,
    };
  }
  return { model, eligible: true, recommended: model.low_resource_required === true };
}

/** f32 activations: the variant to prefer when shader-f16 is missing (and it always works). */
function isF32Variant(model: ModelRecord): boolean {
  return /q\d+f32/.test(model.model_id);
}

/**
 * Classify the whole catalog. Eligible models come first, ordered so the best default is first:
 * chat models before embedding models (an embedding model is served only when picked), then
 * recommended (low-resource) before the rest, q4f32 before others when the GPU lacks f16, then
 * smaller VRAM need first. Excluded models follow in catalog order, each with its reason.
 */
export function classifyCatalog(
  catalog: readonly ModelRecord[],
  gpu: GpuCapabilities,
): ModelEligibility[] {
  const all = catalog.map((m) => classifyModel(m, gpu));
  const eligible = all.filter((e) => e.eligible);
  const excluded = all.filter((e) => !e.eligible);
  const rank = (e: ModelEligibility): number[] => [
    isEmbeddingModel(e.model) ? 1 : 0,
    e.eligible && e.recommended ? 0 : 1,
    !gpu.shaderF16 && !isF32Variant(e.model) ? 1 : 0,
    e.model.vram_required_MB ?? Number.MAX_SAFE_INTEGER,
  ];
  eligible.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < ra.length; i++) {
      const d = (ra[i] ?? 0) - (rb[i] ?? 0);
      if (d !== 0) return d;
    }
    return 0;
  });
  return [...eligible, ...excluded];
}

/** The model to preselect: the first eligible chat model after ranking, if any. */
export function defaultModel(classified: readonly ModelEligibility[]): ModelRecord | undefined {
  return classified.find((e) => e.eligible && !isEmbeddingModel(e.model))?.model;
}
