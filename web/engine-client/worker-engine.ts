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
 * call fails with `worker_crashed` instead of hanging forever.
 */
export class WorkerEngine implements InferenceEngine {
  private readonly remote: Comlink.Remote<EngineHostApi>;
  private readonly crashed: Promise<never>;

  constructor(private readonly worker: Worker) {
    this.remote = Comlink.wrap<EngineHostApi>(worker);
    this.crashed = new Promise<never>((_, reject) => {
      const fail = (message: string) =>
        reject(new EngineError("worker_crashed", `the engine worker stopped: ${message}`));
      worker.addEventListener("error", (e) => fail(e.message || "uncaught error"));
      worker.addEventListener("messageerror", () => fail("a message could not be decoded"));
    });
    // Calls that are never made must not leave an unhandled rejection behind.
    this.crashed.catch(() => {});
  }

  /** Called once if the Worker dies, even while no call is pending (the page must tell the user). */
  onCrash(listener: (error: EngineError) => void): void {
    this.crashed.catch((e: unknown) => listener(e as EngineError));
  }

  private async call<T>(pending: Promise<Outcome<T>>): Promise<T> {
    const result = await Promise.race([pending, this.crashed]);
    if (!result.ok) throw EngineError.fromPayload(result.error);
    return result.value;
  }

  load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    return this.call(this.remote.load(model, Comlink.proxy(onProgress)));
  }

  chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.call(this.remote.chat(request, Comlink.proxy(onDelta)));
  }

  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.call(this.remote.complete(request, Comlink.proxy(onDelta)));
  }

  score(request: ScoreRequest): Promise<ScoreResult> {
    return this.call(this.remote.score(request));
  }

  embed(request: EmbedRequest): Promise<EmbedResult> {
    return this.call(this.remote.embed(request));
  }

  abort(): Promise<void> {
    return Promise.race([this.remote.abort(), this.crashed]);
  }

  unload(): Promise<void> {
    return this.call(this.remote.unload());
  }

  stats(): Promise<EngineStats> {
    return Promise.race([this.remote.stats(), this.crashed]);
  }

  /** WGSL micro-benchmarks in the Worker (GFLOP/s and GB/s), with progress. */
  benchmark(durationMs: number, onProgress: OnProgress): Promise<BenchmarkResult> {
    return this.call(this.remote.benchmark(durationMs, Comlink.proxy(onProgress)));
  }

  terminate(): void {
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
