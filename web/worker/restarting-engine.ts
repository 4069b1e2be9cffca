import type { BenchmarkResult } from "../../shared/gpu/classify.js";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type {
  ChatRequest,
  CompletionRequest,
  EngineError,
  EngineStats,
  GenerationResult,
  InferenceEngine,
  OnDelta,
  OnProgress,
} from "../engine/inference-engine.js";
import type { WorkerEngine } from "./engine-client.js";

/**
 * The engine Worker as the page uses it: when the Worker dies (uncaught error, out of memory, the
 * browser killed it), the crash is reported once through `onCrash` and the next `load` or
 * `benchmark` starts a fresh Worker. Calls in flight fail with `worker_crashed`; the contributor
 * then reloads its model, which lands in the new Worker.
 */
export class RestartingEngine implements InferenceEngine {
  private current!: WorkerEngine;
  private dead = false;
  private listeners: ((e: EngineError) => void)[] = [];
  restarts = 0;

  constructor(private readonly spawn: () => WorkerEngine) {
    this.start();
  }

  private start(): void {
    const worker = this.spawn();
    this.current = worker;
    this.dead = false;
    worker.onCrash((e) => {
      if (this.current !== worker) return;
      this.dead = true;
      worker.terminate();
      for (const l of this.listeners) l(e);
    });
  }

  private live(): WorkerEngine {
    if (this.dead) {
      this.restarts++;
      this.start();
    }
    return this.current;
  }

  onCrash(listener: (e: EngineError) => void): void {
    this.listeners.push(listener);
  }

  load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    return this.live().load(model, onProgress);
  }
  benchmark(durationMs: number, onProgress: OnProgress): Promise<BenchmarkResult> {
    return this.live().benchmark(durationMs, onProgress);
  }
  chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.current.chat(request, onDelta);
  }
  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.current.complete(request, onDelta);
  }
  abort(): Promise<void> {
    return this.current.abort();
  }
  unload(): Promise<void> {
    return this.current.unload();
  }
  stats(): Promise<EngineStats> {
    return this.current.stats();
  }
}
