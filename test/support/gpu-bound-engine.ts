import type { ModelRecord } from "../../shared/models/catalog.js";
import {
  EngineError,
  type ChatRequest,
  type CompletionRequest,
  type GenerationResult,
  type OnDelta,
  type OnProgress,
} from "../../web/engine/inference-engine.js";
import { DeterministicEngine } from "./deterministic-engine.js";

/**
 * The deterministic engine holding a real WebGPU device, as WebLLM does: loading a model requests
 * a device, every generation submits work to it, and once the device is lost (the test destroys it)
 * generations fail with `device_lost` until the model is loaded again on a new device — the path
 * the production runtime must recover from.
 */
export class GpuBoundEngine extends DeterministicEngine {
  private device: GPUDevice | null = null;
  private lost = false;
  loads = 0;

  constructor(
    tokenDelayMs = 15,
    private readonly onLost: () => void = () => {},
  ) {
    super(tokenDelayMs);
  }

  override async load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new EngineError("load_failed", "no WebGPU adapter");
    const device = await adapter.requestDevice();
    this.device = device;
    this.lost = false;
    void device.lost.then(() => {
      if (this.device !== device) return;
      this.lost = true;
      this.onLost();
    });
    await super.load(model, onProgress);
    this.loads++;
  }

  /** Test hook: what a driver reset or GPU process crash does to the device. */
  destroyDevice(): void {
    this.device?.destroy();
  }

  override async chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    await this.touch();
    return super.chat(request, onDelta);
  }

  override async complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    await this.touch();
    return super.complete(request, onDelta);
  }

  private async touch(): Promise<void> {
    if (!this.device || this.lost) {
      throw new EngineError("device_lost", "The GPU device was lost (destroyed by the test).");
    }
    this.device.queue.submit([this.device.createCommandEncoder().finish()]);
    await this.device.queue.onSubmittedWorkDone();
  }
}
