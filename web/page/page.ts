import type { BenchmarkResult, GpuClassification } from "../../shared/gpu/classify.js";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { ControllerView } from "../control/controller.js";
import type { ControlSettings } from "../control/settings.js";
import type { RestartingEngine } from "../engine-client/restarting-engine.js";
import type { GpuReport } from "../gpu/detect-gpu.js";
import type { Ledger } from "../ledger/ledger.js";
import type { Contribution } from "../runtime/start-contributing.js";
import type { ContributorView } from "../runtime/tab-status.js";
import type { ConsentPanel } from "../ui/consent-panel.js";
import type { ControlsPanel } from "../ui/controls-panel.js";
import type { Dashboard } from "../ui/dashboard.js";
import type { GpuPanel } from "../ui/gpu-panel.js";
import type { ModelPicker } from "../ui/model-picker.js";
import type { LedgerWrites } from "./ledger-view.js";
import type { Store } from "./store.js";

/**
 * The full contributor page (web/main.ts): what changes while it is open (`PageState`, changed only
 * through `store.update`) and the parts made once (`Page`).
 */
export interface PageState {
  settings: ControlSettings;
  classification: GpuClassification;
  benchmark: BenchmarkResult | null;
  /** The benchmark running now, if any. */
  measuring: Promise<void> | null;
  catalog: ModelRecord[];
  picker: ModelPicker | null;
  /** Measured ÷ predicted decode speed from served jobs (null until a job was measured). */
  correction: number | null;
  /** After consent: the engine, contributor and controller (web/runtime/start-contributing.ts). */
  contribution: Contribution | null;
  view: ContributorView | null;
  control: ControllerView | null;
  /** The primary "Start contributing" action, once there is a model to serve. */
  consent: ConsentPanel | null;
  /** Why the last load failed (cleared by the next attempt): the page offers a retry. */
  failure: string | null;
}

/** The state as the page opens: the stored settings and benchmark; nothing started yet. */
export function openingState(
  settings: ControlSettings,
  classification: GpuClassification,
  benchmark: BenchmarkResult | null,
): PageState {
  return {
    settings,
    classification,
    benchmark,
    measuring: null,
    catalog: [],
    picker: null,
    correction: null,
    contribution: null,
    view: null,
    control: null,
    consent: null,
    failure: null,
  };
}

/** The page's fixed parts (made once) and its state. */
export interface Page {
  readonly store: Store<PageState>;
  readonly gpu: GpuReport;
  readonly ledger: Ledger;
  readonly gpuPanel: GpuPanel;
  readonly dashboard: Dashboard;
  readonly controls: ControlsPanel;
  /** The engine Worker, started on first use (a benchmark or consent), never before. */
  engine(): RestartingEngine;
  /** Forget the engine (after a failed load, which disposed it): the next use starts a fresh one. */
  dropEngine(): void;
  /** Ledger writes; a job's credit is recorded after the job itself. */
  readonly record: LedgerWrites;
}
