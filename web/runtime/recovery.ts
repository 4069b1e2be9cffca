import type { ModelRecord } from "../../shared/models/catalog.js";
import type { EngineError, EngineErrorCode, InferenceEngine } from "../engine/inference-engine.js";
import type { TabStatus } from "./tab-status.js";
import type { Timers } from "./timers.js";

/**
 * Bringing the model back after the engine lost it: the GPU device was lost, the engine Worker
 * crashed (RestartingEngine starts a fresh one on the next load), or the model is no longer loaded.
 * The tab tells the coordinator (status "loading" with the reason), reloads the model and serves
 * again. Bounded: after 3 recoveries in 10 minutes it stops and asks the contributor to reload the
 * page. Owns the model to reload and the recovery history.
 */
const RELOAD_CODES: ReadonlySet<EngineErrorCode> = new Set([
  "device_lost",
  "worker_crashed",
  "not_loaded",
]);
const MAX_RECOVERIES = 3;
const RECOVERY_WINDOW_MS = 10 * 60_000;

/** The engine no longer holds the model: the tab must reload it before serving again. */
export function needsReload(e: EngineError): boolean {
  return RELOAD_CODES.has(e.code);
}

export class Recovery {
  /** What to reload: the model the tab serves (null before start and after giving up). */
  private model: ModelRecord | null = null;
  private running = false;
  private history: number[] = [];

  constructor(
    private readonly engine: InferenceEngine,
    private readonly status: TabStatus,
    private readonly timers: Timers,
  ) {}

  /** The model is loaded and served: it is what a recovery reloads. */
  loaded(model: ModelRecord): void {
    this.model = model;
  }

  get recovering(): boolean {
    return this.running;
  }

  async recover(e: EngineError): Promise<void> {
    const model = this.model;
    if (!model || this.running) return;
    const status = this.status;
    const now = this.timers.now();
    this.history = this.history.filter((t) => now - t < RECOVERY_WINDOW_MS);
    if (this.history.length >= MAX_RECOVERIES) {
      status.pauseRequested = true;
      this.model = null;
      status.update({
        model: null,
        reason: `${e.code}: stopped`,
        error: `${e.message} This keeps happening; reload the page to contribute again.`,
      });
      if (status.now.state !== "busy") status.setState("paused");
      return;
    }
    this.history.push(now);
    this.running = true;
    const reloading = `${e.code}: reloading the model`;
    const pausedFor = status.pauseRequested ? status.now.reason : null;
    status.update({ model: null, reason: reloading, error: null });
    if (status.now.state === "loading") status.announce();
    else status.setState("loading");
    try {
      await this.engine.load(model, () => {});
      // A pause asked for before or during the reload still holds, in its own words; one lifted
      // meanwhile (a rest that ended, the contributor's resume) does not.
      const reason = !status.pauseRequested
        ? null
        : status.now.reason !== reloading
          ? status.now.reason
          : pausedFor;
      status.update({ model: model.model_id, reason });
      this.running = false;
      status.setState(status.resting);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      status.pauseRequested = true;
      this.model = null;
      this.running = false;
      status.update({
        reason: `${e.code}: could not reload`,
        error: `Could not reload ${model.model_id} after ${e.code}: ${message}. Reload the page to contribute again.`,
      });
      status.setState("paused");
    }
  }
}
