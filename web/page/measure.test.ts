import { afterEach, describe, expect, it, vi } from "vitest";
import { classifyGpu } from "../../shared/gpu/classify.js";
import { TEST_ADAPTER } from "../../test/support/contributor-harness.js";
import { RestartingEngine } from "../engine-client/restarting-engine.js";
import { WorkerEngine } from "../engine-client/worker-engine.js";
import type { GpuReport } from "../gpu/detect-gpu.js";
import { measure } from "./measure.js";
import { openingState, type Page, type PageState } from "./page.js";
import { createStore } from "./store.js";

/**
 * The page's benchmark when its engine is terminated under it: another tab in this browser took
 * the engine over (main.ts: the claim is lost, the contribution disposed). The "GPU working:
 * measuring" badge reads `measuring`; it must clear, and the next contribution must measure anew
 * rather than wait on the dead run.
 */
afterEach(() => {
  vi.unstubAllGlobals();
});

/** An engine Worker that never answers (mid-benchmark). */
class BusyWorker extends EventTarget {
  postMessage(): void {}
  terminate(): void {}
}

const gpu: GpuReport = {
  ...TEST_ADAPTER,
  maxComputeWorkgroupStorageSize: 1,
  isFallbackAdapter: true,
};

function page() {
  let engine: RestartingEngine | null = null;
  const store = createStore<PageState>(
    openingState(
      { gpuShare: 1, pauseOnBattery: false, pauseWhileActive: false },
      classifyGpu(gpu, null),
      null,
    ),
  );
  const p = {
    store,
    gpu,
    gpuPanel: { progress() {}, render() {} },
    engine: () =>
      (engine ??= new RestartingEngine(
        () => new WorkerEngine(new BusyWorker() as unknown as Worker),
      )),
    dropEngine: () => (engine = null),
  } as unknown as Page;
  return p;
}

describe("measure", () => {
  it("clears `measuring` when the engine is terminated mid-benchmark, and measures anew next time", async () => {
    vi.stubGlobal("location", { search: "" });
    const p = page();
    const first = measure(p);
    expect(p.store.state.measuring).toBe(first);

    // Another tab takes the engine over: the contribution is disposed with its engine.
    p.engine().terminate();
    p.dropEngine();
    await expect(
      Promise.race([
        first.then(() => "settled"),
        new Promise((r) => setTimeout(() => r("pending"), 500)),
      ]),
    ).resolves.toBe("settled");
    expect(p.store.state.measuring).toBeNull();
    expect(p.store.state.benchmark).toBeNull();

    // "Contribute from this tab again": a new benchmark in a fresh engine, not the dead run.
    const second = measure(p);
    expect(second).not.toBe(first);
    expect(p.store.state.measuring).toBe(second);
    p.engine().terminate();
    await second;
    expect(p.store.state.measuring).toBeNull();
  });
});
