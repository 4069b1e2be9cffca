import type { ModelRecord } from "../../shared/models/catalog.js";
import { EngineError, type OnProgress } from "../../web/engine/inference-engine.js";
import { DeterministicEngine } from "./deterministic-engine.js";

/** Memory of the pretend GPU in the paced test Worker (test/support/paced-test-engine-worker.ts). */
export const TEST_GPU_MEMORY_MB = 1024;

/**
 * The deterministic engine on a pretend GPU with a fixed amount of memory and a decode speed the
 * test sets: loading a model whose `vram_required_MB` exceeds the memory fails with
 * `out_of_memory` (as WebLLM's engine reports it), and the pause between tokens can be changed
 * between jobs, so a test can slow the "GPU" down as thermal throttling would.
 */
export class PacedEngine extends DeterministicEngine {
  constructor(
    private readonly memoryMB: number,
    tokenDelayMs: number,
  ) {
    super(tokenDelayMs);
  }

  get pace(): number {
    return this.tokenDelayMs;
  }

  set pace(ms: number) {
    this.tokenDelayMs = ms;
  }

  override async load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    const need = model.vram_required_MB ?? 0;
    if (need > this.memoryMB) {
      onProgress({ progress: 0, text: `Loading ${model.model_id} (paced test engine)` });
      throw new EngineError(
        "out_of_memory",
        `The GPU ran out of memory. (${model.model_id} needs ~${Math.round(need)} MB; this test GPU has ${this.memoryMB} MB)`,
      );
    }
    await super.load(model, onProgress);
  }
}
