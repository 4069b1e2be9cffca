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
  type ScoreRequest,
  type ScoreResult,
} from "../engine/inference-engine.js";
import type { WorkerEngine } from "./worker-engine.js";

/**
 * The engine Worker as the page uses it: when the Worker dies (uncaught error, out of memory, the
 * browser killed it), the crash is reported once through `onCrash` and the next `load` or
 * `benchmark` starts a fresh Worker. Calls in flight fail with `worker_crashed`; the contributor
 * then reloads its model, which lands in the new Worker.
 */
export class RestartingEngine implements InferenceEngine {
  private current!: WorkerEngine;
  private dead: EngineError | null = null;
  private listeners: ((e: EngineError) => void)[] = [];
  restarts = 0;

  constructor(private readonly spawn: () => WorkerEngine) {
    this.start();
  }

  private start(): void {
    const worker = this.spawn();
    this.current = worker;
    this.dead = null;
    worker.onCrash((e) => {
      if (this.current !== worker) return;
      this.dead = e;
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
  /** The running Worker, or a worker_crashed failure until the next load starts a new one. */
  private async running(): Promise<WorkerEngine> {
    if (this.dead) throw new EngineError("worker_crashed", this.dead.message);
    return this.current;
  }

  async chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return (await this.running()).chat(request, onDelta);
  }
  async complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return (await this.running()).complete(request, onDelta);
  }
  async score(request: ScoreRequest): Promise<ScoreResult> {
    return (await this.running()).score(request);
  }
  async embed(request: EmbedRequest): Promise<EmbedResult> {
    return (await this.running()).embed(request);
  }
  async abort(): Promise<void> {
    if (!this.dead) await this.current.abort();
  }
  async unload(): Promise<void> {
    if (!this.dead) await this.current.unload();
  }
  /** Stop the current Worker for good (the embedded frame's "stop"). */
  terminate(): void {
    this.current.terminate();
  }
  async stats(): Promise<EngineStats> {
    if (this.dead) return { loadedModel: null, generations: 0, lastDecodeTokensPerSecond: null };
    return this.current.stats();
  }
}
