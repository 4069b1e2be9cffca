import * as Comlink from "comlink";
import type { BenchmarkResult } from "../../shared/gpu/classify.js";
import { benchmarkThisGpu } from "../bench/gpu-benchmark.js";
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

/**
 * The Worker side of the engine boundary. comlink would turn a thrown error into a bare
 * `{name, message}` and lose its code, so every call that can fail returns an `Outcome` carrying a
 * typed `EngineErrorPayload`; web/engine-client/worker-engine.ts turns it back into an `EngineError`.
 */
export interface EngineHostApi {
  load(model: ModelRecord, onProgress: OnProgress): Promise<Outcome<void>>;
  chat(request: ChatRequest, onDelta: OnDelta): Promise<Outcome<GenerationResult>>;
  complete(request: CompletionRequest, onDelta: OnDelta): Promise<Outcome<GenerationResult>>;
  score(request: ScoreRequest): Promise<Outcome<ScoreResult>>;
  embed(request: EmbedRequest): Promise<Outcome<EmbedResult>>;
  abort(): Promise<void>;
  unload(): Promise<Outcome<void>>;
  stats(): Promise<EngineStats>;
  /** Run the WGSL micro-benchmarks on a device of their own (before a model loads). */
  benchmark(durationMs: number, onProgress: OnProgress): Promise<Outcome<BenchmarkResult>>;
}

async function outcome<T>(run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    const e =
      err instanceof EngineError
        ? err
        : new EngineError("engine_error", err instanceof Error ? err.message : String(err));
    return { ok: false, error: e.toPayload() };
  }
}

/**
 * Deltas go to the page through the callback proxy's own MessagePort, while the call's result comes
 * back on the Worker's port; messages on different ports are not ordered with each other. So the
 * host keeps each delta's acknowledgement and awaits them all before returning the result: the page
 * has then seen every delta before `job.done` can be sent. Generation never waits per token.
 */
function orderedDeltas(onDelta: OnDelta) {
  const acks: Promise<unknown>[] = [];
  return {
    push(...piece: Parameters<OnDelta>) {
      acks.push(Promise.resolve(onDelta(...piece)).catch(() => undefined));
    },
    settled: () => Promise.all(acks),
  };
}

function release(callback: unknown): void {
  const proxy = callback as { [Comlink.releaseProxy]?: () => void };
  if (typeof proxy[Comlink.releaseProxy] === "function") proxy[Comlink.releaseProxy]();
}

/** The host API over an engine, without any transport (unit-testable in Node). */
export function engineHostApi(engine: InferenceEngine): EngineHostApi {
  function generate(
    run: (onDelta: OnDelta) => Promise<GenerationResult>,
    onDelta: OnDelta,
  ): Promise<Outcome<GenerationResult>> {
    const deltas = orderedDeltas(onDelta);
    return outcome(async () => {
      try {
        return await run(deltas.push);
      } finally {
        await deltas.settled();
        release(onDelta);
      }
    });
  }
  return {
    load: (model, onProgress) =>
      outcome(async () => {
        try {
          await engine.load(model, (p) => void Promise.resolve(onProgress(p)).catch(() => {}));
        } finally {
          release(onProgress);
        }
      }),
    chat: (request, onDelta) => generate((d) => engine.chat(request, d), onDelta),
    complete: (request, onDelta) => generate((d) => engine.complete(request, d), onDelta),
    score: (request) => outcome(() => engine.score(request)),
    embed: (request) => outcome(() => engine.embed(request)),
    abort: () => engine.abort(),
    unload: () => outcome(() => engine.unload()),
    stats: () => engine.stats(),
    benchmark: (durationMs, onProgress) =>
      outcome(async () => {
        try {
          const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
          if (!gpu) throw new EngineError("benchmark_failed", "WebGPU is not available here");
          return await benchmarkThisGpu(gpu, {
            durationMs,
            onProgress: (p) => void Promise.resolve(onProgress(p)).catch(() => {}),
          }).catch((err: unknown) => {
            if (err instanceof EngineError) throw err;
            throw new EngineError(
              "benchmark_failed",
              err instanceof Error ? err.message : String(err),
            );
          });
        } finally {
          release(onProgress);
        }
      }),
  };
}

/** Serve `engine` to the page that created this Worker. */
export function exposeEngine(engine: InferenceEngine, endpoint: Comlink.Endpoint = self): void {
  Comlink.expose(engineHostApi(engine), endpoint);
}
