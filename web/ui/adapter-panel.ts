import type { GpuDetection } from "../gpu/detect-gpu.js";
import { fill, formatBytes, h } from "./dom.js";

/** The "your GPU" panel: what WebGPU reported, or why this browser cannot contribute. */
export function renderAdapter(region: HTMLElement, detection: GpuDetection): void {
  if (!detection.ok) {
    region.dataset.webgpu = "missing";
    fill(
      region,
      h("h2", {}, "Your GPU"),
      h(
        "p",
        { class: "problem", role: "alert", "data-reason": detection.reason },
        detection.message,
      ),
    );
    return;
  }
  const g = detection.gpu;
  region.dataset.webgpu = "ok";
  const row = (label: string, value: string, key: string) =>
    h("div", { class: "row" }, h("dt", {}, label), h("dd", { "data-field": key }, value));
  fill(
    region,
    h("h2", {}, "Your GPU"),
    h(
      "dl",
      { "aria-label": "WebGPU adapter" },
      row("Vendor", g.vendor, "vendor"),
      row("Architecture", g.architecture, "architecture"),
      row("Description", g.description || "(not reported)", "description"),
      row("shader-f16", g.shaderF16 ? "yes" : "no", "shader-f16"),
      row("Max buffer size", formatBytes(g.maxBufferSize), "max-buffer-size"),
      row(
        "Max storage buffer binding",
        formatBytes(g.maxStorageBufferBindingSize),
        "max-storage-buffer-binding-size",
      ),
      row(
        "Max workgroup storage",
        formatBytes(g.maxComputeWorkgroupStorageSize),
        "max-compute-workgroup-storage-size",
      ),
      g.isFallbackAdapter ? row("Software adapter", "yes (slow)", "fallback") : null,
    ),
  );
}
