import { GPU_CLASS_LABEL, type GpuClassification } from "../../shared/gpu/classify.js";
import { fill, h } from "./dom.js";
import { formatRate } from "./format.js";

/**
 * What this GPU is: its class, the profile it matched (typical figures, labelled as such), and the
 * benchmark this tab measured — or a button to measure it (a few seconds, with a progress bar).
 */
export interface GpuPanel {
  render(c: GpuClassification): void;
  progress(p: { progress: number; text: string } | null): void;
  button: HTMLButtonElement;
}

export function renderGpuPanel(region: HTMLElement, onMeasure: () => void): GpuPanel {
  const button = h("button", { id: "run-benchmark", type: "button" }, "Measure this GPU");
  button.addEventListener("click", onMeasure);
  const body = h("div", {});
  const bar = h("div", { id: "bench-progress-wrap" });
  fill(region, h("h2", { id: "gpu-class-heading" }, "What your GPU can do"), body, bar);
  const row = (label: string, value: string, key: string) =>
    h("div", { class: "row" }, h("dt", {}, label), h("dd", { "data-field": key }, value));
  return {
    button,
    render(c) {
      region.dataset.gpuClass = c.class;
      const m = c.measured;
      fill(
        body,
        h(
          "dl",
          { "aria-label": "GPU class and benchmark" },
          row("Class", GPU_CLASS_LABEL[c.class], "gpu-class"),
          row(
            "Profile",
            c.profile
              ? `${c.profile.name}${c.typicalMemoryGB ? ` (typically ${c.typicalMemoryGB} GB)` : ""}`
              : "not in the profile table",
            "gpu-profile",
          ),
          row(
            "Compute (measured)",
            m ? formatRate(m.matmulGflops, "G", "FLOP/s") : "not measured yet",
            "bench-matmul",
          ),
          row(
            "Memory bandwidth (measured)",
            m ? formatRate(m.bandwidthGBs, "G", "B/s") : "not measured yet",
            "bench-bandwidth",
          ),
        ),
        ...c.notes.map((n) => h("p", { class: "note" }, n)),
        h(
          "p",
          {},
          button,
          " ",
          h(
            "span",
            { class: "hint" },
            m
              ? `Measured in ${(m.durationMs / 1000).toFixed(1)} s. Run again any time.`
              : "A few seconds of GPU work in this tab; nothing is sent anywhere.",
          ),
        ),
      );
    },
    progress(p) {
      if (!p) {
        fill(bar);
        button.disabled = false;
        return;
      }
      button.disabled = true;
      const pct = Math.round(Math.max(0, Math.min(1, p.progress)) * 100);
      fill(
        bar,
        h("label", { for: "bench-progress" }, "Benchmark"),
        h("progress", { id: "bench-progress", max: 100, value: pct }, `${pct}%`),
        h("p", { class: "progress-text", "aria-live": "polite" }, p.text),
      );
    },
  };
}
