import { describe, expect, it } from "vitest";
import type { EngineError } from "../engine/inference-engine.js";
import { RestartingEngine } from "./restarting-engine.js";
import { WorkerEngine } from "./worker-engine.js";

/**
 * A Worker that never answers, like the engine Worker in the middle of a benchmark or a load; it
 * counts how often it was terminated. `crash()` is what the browser does when a Worker dies.
 */
class BusyWorker extends EventTarget {
  terminated = 0;
  postMessage(): void {}
  terminate(): void {
    this.terminated++;
  }
  crash(): void {
    this.dispatchEvent(new Event("error"));
  }
}

function busyEngine() {
  const workers: BusyWorker[] = [];
  const engine = new RestartingEngine(() => {
    const w = new BusyWorker();
    workers.push(w);
    return new WorkerEngine(w as unknown as Worker);
  });
  const crashes: EngineError[] = [];
  engine.onCrash((e) => crashes.push(e));
  return { engine, workers, crashes };
}

describe("WorkerEngine.terminate", () => {
  it("fails the calls in flight with worker_stopped instead of leaving them pending", async () => {
    const { engine, workers, crashes } = busyEngine();
    // The page's benchmark runs when another tab takes the engine over (main.ts: dispose).
    const benchmark = engine.benchmark(3000, () => {});
    const stats = engine.stats();
    engine.terminate();
    await expect(benchmark).rejects.toMatchObject({ code: "worker_stopped" });
    await expect(stats).rejects.toMatchObject({ code: "worker_stopped" });
    expect(workers[0]!.terminated).toBe(1);
    // Stopped on purpose is no crash: nobody reloads a model for it, and no new Worker starts.
    expect(crashes).toEqual([]);
    expect(engine.restarts).toBe(0);
  });

  it("fails later calls at once, and a second terminate does nothing", async () => {
    const { engine, workers } = busyEngine();
    engine.terminate();
    engine.terminate();
    expect(workers[0]!.terminated).toBe(1);
    await expect(
      engine.load({ model: "m", model_id: "m", model_lib: "l" }, () => {}),
    ).rejects.toMatchObject({
      code: "worker_stopped",
    });
    await expect(engine.abort()).rejects.toMatchObject({ code: "worker_stopped" });
    expect(workers).toHaveLength(1);
  });

  it("leaves a crash a crash: calls fail with worker_crashed and the crash is reported once", async () => {
    const { engine, workers, crashes } = busyEngine();
    const benchmark = engine.benchmark(3000, () => {});
    workers[0]!.crash();
    await expect(benchmark).rejects.toMatchObject({ code: "worker_crashed" });
    expect(crashes.map((e) => e.code)).toEqual(["worker_crashed"]);
    // RestartingEngine terminated the dead Worker; the page's own terminate later is harmless.
    engine.terminate();
    expect(workers[0]!.terminated).toBe(1);
  });
});
