import * as Comlink from "comlink";
import type { BenchmarkResult } from "../../shared/gpu/classify.js";
import type { ModelRecord } from "../../shared/models/catalog.js";
import {
  EngineError,
  type ChatRequest,
  type CompletionRequest,
  type EmbedRequest,
  type EmbedResult,
  type EngineStats,
  type GenerationResult,
  type InferenceEngine,
  type OnDelta,
  type OnProgress,
  type Outcome,
  type ScoreRequest,
  type ScoreResult,
} from "../engine/inference-engine.js";
import type { EngineHostApi } from "../engine-worker/engine-host.js";

/**
 * The page side of the engine boundary: an `InferenceEngine` whose work happens in a Worker.
 * Callbacks cross as comlink proxies; failures come back as typed payloads and are rethrown as
 * `EngineError`. If the Worker itself dies (uncaught error, out of memory), every pending and later
 * call fails with `worker_crashed` instead of hanging forever; if the page stops it (`terminate`:
 * another tab took the engine over, the frame was stopped), with `worker_stopped`, which is no
 * crash: nothing reloads a model for it.
 */
export class WorkerEngine implements InferenceEngine {
  private readonly remote: Comlink.Remote<EngineHostApi>;
  private readonly crashed: Promise<never>;
  /** Rejects when the Worker is gone, crashed or stopped: what every call races against. */
  private readonly gone: Promise<never>;
  private reject!: (error: EngineError) => void;
  /** Why the Worker is gone, once it is: later calls fail at once with it. */
  private ended: EngineError | null = null;
  private terminated = false;

  constructor(private readonly worker: Worker) {
    this.remote = Comlink.wrap<EngineHostApi>(worker);
    this.gone = new Promise<never>((_, reject) => (this.reject = reject));
    this.crashed = new Promise<never>((_, reject) => {
      const fail = (message: string) => {
        const e = new EngineError("worker_crashed", `the engine worker stopped: ${message}`);
        this.end(e);
        reject(e);
      };
      worker.addEventListener("error", (e) => fail(e.message || "uncaught error"));
      worker.addEventListener("messageerror", () => fail("a message could not be decoded"));
    });
    // Calls that are never made must not leave an unhandled rejection behind.
    this.crashed.catch(() => {});
    this.gone.catch(() => {});
  }

  /** Called once if the Worker dies, even while no call is pending (the page must tell the user). */
  onCrash(listener: (error: EngineError) => void): void {
    this.crashed.catch((e: unknown) => listener(e as EngineError));
  }

  /** The first reason wins: a crashed Worker that the page then terminates stays crashed. */
  private end(error: EngineError): void {
    this.ended ??= error;
    this.reject(error);
  }

  /** `request` is not made once the Worker is gone (a released comlink proxy throws). */
  private async settle<T>(request: () => Promise<T>): Promise<T> {
    if (this.ended) throw this.ended;
    return Promise.race([request(), this.gone]);
  }

  private async call<T>(request: () => Promise<Outcome<T>>): Promise<T> {
    const result = await this.settle(request);
    if (!result.ok) throw EngineError.fromPayload(result.error);
    return result.value;
  }

  load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    return this.call(() => this.remote.load(model, Comlink.proxy(onProgress)));
  }

  chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.call(() => this.remote.chat(request, Comlink.proxy(onDelta)));
  }

  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.call(() => this.remote.complete(request, Comlink.proxy(onDelta)));
  }

  score(request: ScoreRequest): Promise<ScoreResult> {
    return this.call(() => this.remote.score(request));
  }

  embed(request: EmbedRequest): Promise<EmbedResult> {
    return this.call(() => this.remote.embed(request));
  }

  abort(): Promise<void> {
    return this.settle(() => this.remote.abort());
  }

  unload(): Promise<void> {
    return this.call(() => this.remote.unload());
  }

  stats(): Promise<EngineStats> {
    return this.settle(() => this.remote.stats());
  }

  /** WGSL micro-benchmarks in the Worker (GFLOP/s and GB/s), with progress. */
  benchmark(durationMs: number, onProgress: OnProgress): Promise<BenchmarkResult> {
    return this.call(() => this.remote.benchmark(durationMs, Comlink.proxy(onProgress)));
  }

  /**
   * Stop the Worker (once; later calls do nothing). Calls in flight — a benchmark, a load, a job —
   * fail with `worker_stopped`: a terminated Worker never answers them, and the page waits on them
   * (its "measuring" badge, the next benchmark).
   */
  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.end(new EngineError("worker_stopped", "the engine worker was stopped"));
    this.remote[Comlink.releaseProxy]();
    this.worker.terminate();
  }
}

/** Start the production engine Worker (WebLLM). */
export function startEngineWorker(): WorkerEngine {
  const worker = new Worker(new URL("../engine-worker/engine-worker.ts", import.meta.url), {
    type: "module",
    name: "engine-worker",
  });
  return new WorkerEngine(worker);
}
