import type { AdapterInfo } from "../../shared/protocol/node-messages.js";
import { toPrintable } from "../../shared/protocol/printable-text.js";

/**
 * What the page learns about the contributor's GPU before anything loads: the adapter's identity,
 * whether it has shader-f16, and the limits that decide which models fit. The engine Worker later
 * requests its own adapter and device; this one is only inspected.
 */
export interface GpuReport extends AdapterInfo {
  maxComputeWorkgroupStorageSize: number;
  /** True when the browser reports a fallback (software) adapter. */
  isFallbackAdapter: boolean;
}

export type GpuDetection =
  | { ok: true; gpu: GpuReport }
  | { ok: false; reason: "no_webgpu" | "no_adapter" | "insecure_context"; message: string };

export async function detectGpu(nav: Navigator = navigator): Promise<GpuDetection> {
  if (!globalThis.isSecureContext) {
    return {
      ok: false,
      reason: "insecure_context",
      message: "WebGPU needs a secure page (https:// or http://localhost).",
    };
  }
  if (!nav.gpu) {
    return {
      ok: false,
      reason: "no_webgpu",
      message:
        "This browser has no WebGPU. Use a recent Chrome, Edge or Safari, or enable WebGPU in your browser's settings.",
    };
  }
  const adapter = await nav.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    return {
      ok: false,
      reason: "no_adapter",
      message:
        "WebGPU is present but no GPU adapter is available (the GPU may be blocklisted or disabled).",
    };
  }
  const info = adapter.info;
  return {
    ok: true,
    gpu: {
      vendor: info.vendor || "unknown",
      architecture: info.architecture || "unknown",
      description: info.description || "",
      shaderF16: adapter.features.has("shader-f16"),
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      isFallbackAdapter:
        (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    },
  };
}

/**
 * The part of the report that goes into `hello` (the schema has no extra fields), fitted to it:
 * the coordinator refuses a hello whose adapter strings are too long or hold control or
 * bidirectional-formatting characters, which a driver's string should not, but might.
 */
export function adapterInfo(gpu: GpuReport): AdapterInfo {
  return {
    vendor: toPrintable(gpu.vendor).slice(0, 200),
    architecture: toPrintable(gpu.architecture).slice(0, 200),
    description: toPrintable(gpu.description).slice(0, 500),
    shaderF16: gpu.shaderF16,
    maxBufferSize: gpu.maxBufferSize,
    maxStorageBufferBindingSize: gpu.maxStorageBufferBindingSize,
  };
}
