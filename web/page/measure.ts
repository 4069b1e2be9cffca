import { classifyGpu } from "../../shared/gpu/classify.js";
import { predictDecode } from "../../shared/gpu/predict.js";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { HelloGpu } from "../../shared/protocol/node-messages.js";
import { EngineError } from "../engine/inference-engine.js";
import { adapterKey } from "../ledger/ledger.js";
import { byId, h } from "../ui/dom.js";
import type { Page } from "./page.js";
import { benchmarkMs } from "./url-timings.js";

/** The GPU's measured figures on the page: the benchmark, the predictions, what `hello` says. */
export function predictions(p: Page) {
  const { classification, correction } = p.store.state;
  return (m: ModelRecord) => predictDecode(m, classification, correction);
}

/**
 * Run the WGSL benchmarks in the engine Worker, store them, re-classify and re-predict. While it
 * runs, `measuring` holds it (the "GPU working: measuring" badge; a second call joins it); it is
 * cleared however the run ends, also when the engine is terminated under it.
 */
export function measure(p: Page): Promise<void> {
  const store = p.store;
  if (store.state.measuring) return store.state.measuring;
  let settled = false;
  const run = async () => {
    p.gpuPanel.progress({ progress: 0, text: "Starting the benchmark…" });
    try {
      const result = await p.engine().benchmark(benchmarkMs(), (x) => p.gpuPanel.progress(x));
      store.update({ benchmark: result, classification: classifyGpu(p.gpu, result) });
      await p.ledger.saveBenchmark(adapterKey(p.gpu), result).catch(() => {});
    } catch (err) {
      // Stopped, not failed: the page let its engine go mid-benchmark (another tab took it over,
      // which the page says itself). Nothing is stored; the next contribution measures again.
      if (err instanceof EngineError && err.code === "worker_stopped") return;
      const message = err instanceof Error ? err.message : String(err);
      byId("gpu-class").append(
        h("p", { class: "problem", role: "alert" }, `The benchmark failed: ${message}`),
      );
    } finally {
      p.gpuPanel.progress(null);
      p.gpuPanel.render(store.state.classification);
      store.state.picker?.setPredictions(predictions(p));
      settled = true;
      store.update({ measuring: null });
    }
  };
  const measuring = run();
  if (!settled) store.update({ measuring });
  return measuring;
}

export function helloGpu(p: Page): HelloGpu {
  const { benchmark: b, classification } = p.store.state;
  return {
    class: classification.class,
    profile: classification.profile?.id ?? null,
    ...(b
      ? {
          benchmark: {
            matmulGflops: b.matmulGflops,
            bandwidthGBs: b.bandwidthGBs,
            durationMs: b.durationMs,
          },
        }
      : {}),
  };
}
