import {
  classifyGpu,
  type BenchmarkResult,
  type GpuClassification,
} from "../shared/gpu/classify.js";
import { predictDecode, speedCorrection } from "../shared/gpu/predict.js";
import type { ModelRecord } from "../shared/models/catalog.js";
import { classifyCatalog } from "../shared/models/eligibility.js";
import type { HelloGpu } from "../shared/protocol/node-messages.js";
import type { ControllerView } from "./control/controller.js";
import { startWithFallback } from "./control/load-fallback.js";
import { DEFAULT_SETTINGS, type ControlSettings } from "./control/settings.js";
import type { RestartingEngine } from "./engine-client/restarting-engine.js";
import { EngineError } from "./engine/inference-engine.js";
import { adapterInfo, detectGpu, type GpuReport } from "./gpu/detect-gpu.js";
import { adapterKey, Ledger } from "./ledger/ledger.js";
import { createStore, type Store } from "./page/store.js";
import { fetchCatalog } from "./runtime/catalog-client.js";
import type { JobEnd } from "./runtime/job-runner.js";
import {
  createEngine,
  startContributing,
  type Contribution,
} from "./runtime/start-contributing.js";
import type { ContributorView } from "./runtime/tab-status.js";
import { renderAdapter } from "./ui/adapter-panel.js";
import { renderCachePanel } from "./ui/cache-panel.js";
import { renderConsent } from "./ui/consent-panel.js";
import { renderControls, type ControlsPanel } from "./ui/controls-panel.js";
import { renderDashboard, type Dashboard } from "./ui/dashboard.js";
import { byId, fill, h } from "./ui/dom.js";
import { renderGpuPanel, type GpuPanel } from "./ui/gpu-panel.js";
import { renderModelPicker, type ModelPicker } from "./ui/model-picker.js";
import { gpuWorking, stateWords } from "./ui/state-words.js";
import { renderProgress, renderStatus } from "./ui/status-panel.js";

/**
 * The contributor page: show the GPU, its class and what it can serve (predicted speeds, labelled
 * as predictions), wait for consent, measure the GPU if it has not been measured, load the model in
 * the engine Worker and contribute — under the contributor's controls, with a local ledger and a
 * dashboard. Nothing is downloaded and no socket opens before consent.
 */
const AGENT = "tabgrid-web/0.1.0";

/** A duration from the page's URL (tests shorten waits with it), kept within sane bounds. */
function msParam(name: string, fallback: number, min: number, max: number): number {
  const asked = Number(new URLSearchParams(location.search).get(name));
  return Number.isFinite(asked) && asked > 0 ? Math.min(max, Math.max(min, asked)) : fallback;
}

/** Benchmark length: a few seconds; `?bench-ms=` shortens it. */
const benchmarkMs = () => msParam("bench-ms", 3000, 300, 10_000);
/** How long without input before the contributor counts as away again; `?idle-ms=`. */
const idleMs = () => msParam("idle-ms", 60_000, 500, 600_000);
/** How long to back off after a sustained speed drop; `?backoff-ms=`. */
const backoffMs = () => msParam("backoff-ms", 60_000, 500, 600_000);

/** What changes while the page is open; every change goes through `store.update`. */
interface PageState {
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
}

/** The page's fixed parts (made once) and its state. */
interface Page {
  readonly store: Store<PageState>;
  readonly gpu: GpuReport;
  readonly ledger: Ledger;
  readonly gpuPanel: GpuPanel;
  readonly dashboard: Dashboard;
  readonly controls: ControlsPanel;
  /** The engine Worker, started on first use (a benchmark or consent), never before. */
  engine(): RestartingEngine;
  /** Ledger writes; a job's credit is recorded after the job itself. */
  readonly record: LedgerWrites;
}

function indicator(active: boolean, text: string): void {
  const el = byId("gpu-indicator");
  el.dataset.active = String(active);
  el.textContent = active ? `GPU working: ${text}` : "GPU not in use by Tabgrid";
  document.title = `${active ? "● " : ""}Tabgrid — contribute your GPU`;
}

/** The state in words and the "GPU working" badge: re-rendered on every change they read. */
function renderState(p: Page): void {
  const { view, control, picker, measuring } = p.store.state;
  const words = stateWords(view, control, picker?.selected()?.model_id ?? null);
  p.dashboard.state(words);
  indicator(gpuWorking(view, measuring !== null), measuring ? "measuring" : words);
}

async function refreshLedger(p: Page): Promise<void> {
  const [totals, recent, days] = await Promise.all([
    p.ledger.totals(),
    p.ledger.recentJobs(),
    p.ledger.lastDays(30),
  ]);
  p.dashboard.totals(totals);
  p.dashboard.recent(recent);
  p.dashboard.days(days);
}

interface LedgerWrites {
  job(end: JobEnd): void;
  credit(jobId: string, credit: number): void;
}

/** The coordinator's credit for a job arrives after job.done: record it once the job is stored. */
function ledgerWrites(ledger: Ledger, written: () => Promise<void>): LedgerWrites {
  let last: Promise<unknown> = Promise.resolve();
  return {
    job(end) {
      last = ledger
        .recordJob(end)
        .then(written)
        .catch((err: unknown) => console.warn("ledger: could not record the job", err));
    },
    credit(jobId, credit) {
      last = last
        .then(() => ledger.recordCredit(jobId, credit))
        .then(written)
        .catch((err: unknown) => console.warn("ledger: could not record the credit", err));
    },
  };
}

function predictions(p: Page) {
  const { classification, correction } = p.store.state;
  return (m: ModelRecord) => predictDecode(m, classification, correction);
}

/** Run the WGSL benchmarks in the engine Worker, store them, re-classify and re-predict. */
function measure(p: Page): Promise<void> {
  const store = p.store;
  if (store.state.measuring) return store.state.measuring;
  let settled = false;
  const run = async () => {
    p.gpuPanel.progress({ progress: 0, text: "Starting the benchmark…" });
    try {
      const result = await p.engine().benchmark(benchmarkMs(), (x) => p.gpuPanel.progress(x));
      store.update({ benchmark: result, classification: classifyGpu(p.gpu, result) });
      await p.ledger.saveBenchmark(adapterKey(p.gpu), result).catch(() => {});
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      byId("gpu-class").append(
        h("p", { class: "problem", role: "alert" }, `The benchmark failed: ${message}`),
      );
    } finally {
      p.gpuPanel.progress(null);
      p.gpuPanel.render(store.state.classification);
      store.state.picker?.setPredictions(predictions(p));
      settled = true;
      store.update({ measuring: null });
    }
  };
  const measuring = run();
  if (!settled) store.update({ measuring });
  return measuring;
}

function helloGpu(p: Page): HelloGpu {
  const { benchmark: b, classification } = p.store.state;
  return {
    class: classification.class,
    profile: classification.profile?.id ?? null,
    ...(b
      ? {
          benchmark: {
            matmulGflops: b.matmulGflops,
            bandwidthGBs: b.bandwidthGBs,
            durationMs: b.durationMs,
          },
        }
      : {}),
  };
}

async function main(): Promise<void> {
  const detection = await detectGpu();
  renderAdapter(byId("adapter"), detection);
  if (!detection.ok) {
    fill(byId("models"));
    return;
  }
  const gpu = detection.gpu;
  const ledger = new Ledger();
  const settings = await ledger.settings().catch(() => DEFAULT_SETTINGS);
  const benchmark = await ledger.benchmark(adapterKey(gpu)).catch(() => null);
  const store = createStore<PageState>({
    settings,
    classification: classifyGpu(gpu, benchmark),
    benchmark,
    measuring: null,
    catalog: [],
    picker: null,
    correction: null,
    contribution: null,
    view: null,
    control: null,
  });
  let engine: RestartingEngine | null = null;
  const p: Page = {
    store,
    gpu,
    ledger,
    gpuPanel: renderGpuPanel(byId("gpu-class"), () => void measure(p)),
    dashboard: renderDashboard(byId("dashboard"), () => void exportLedger(ledger)),
    controls: renderControls(byId("controls"), settings, {
      onSettings: (s) => {
        store.update({ settings: s });
        void ledger.saveSettings(s);
        store.state.contribution?.controller.updateSettings(s);
      },
      onPause: (paused) => store.state.contribution?.controller.setUserPaused(paused),
    }),
    engine: () => (engine ??= createEngine()),
    record: ledgerWrites(ledger, () => refreshLedger(p)),
  };
  // The state words read these fields; everything else renders where it changes.
  const shown: (keyof PageState)[] = ["view", "control", "measuring", "picker"];
  store.subscribe((_, changed) => {
    if (shown.some((key) => changed.has(key))) renderState(p);
  });
  p.gpuPanel.render(store.state.classification);
  renderState(p);
  void refreshLedger(p);

  let picker: ModelPicker;
  try {
    const catalog = await fetchCatalog();
    store.update({ catalog });
    const { classification } = store.state;
    picker = renderModelPicker(
      byId("models"),
      classifyCatalog(catalog, {
        ...gpu,
        usableMemoryMB: classification.usableMemoryMB,
        profileName: classification.profile?.name ?? null,
      }),
      predictions(p),
    );
  } catch (err) {
    fill(
      byId("models"),
      h(
        "p",
        { class: "problem", role: "alert" },
        `Could not read the model catalog: ${String(err)}`,
      ),
    );
    return;
  }
  store.update({ picker });
  void renderCachePanel(byId("cache"), store.state.catalog, () => store.state.view?.model ?? null);
  if (!picker.selected()) return;

  const consent = renderConsent(byId("consent-panel"), () => void contribute(p));
  consent.disabled = false;
}

async function exportLedger(ledger: Ledger): Promise<void> {
  const json = await ledger.exportJson();
  const url = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  const a = h("a", {
    href: url,
    download: `tabgrid-ledger-${new Date().toISOString().slice(0, 10)}.json`,
  });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** After the controller has seen the job: correct the speed predictions and record the job. */
function jobEnded(p: Page, end: JobEnd): void {
  const { catalog, classification, correction } = p.store.state;
  if (end.outcome === "done" && end.decodeTokensPerSecond !== null) {
    const model = catalog.find((m) => m.model_id === end.model);
    const predicted = model ? predictDecode(model, classification).tokensPerSecond : null;
    if (predicted) {
      p.store.update({
        correction: speedCorrection(end.decodeTokensPerSecond, predicted) ?? correction,
      });
      p.store.state.picker?.setPredictions(predictions(p));
    }
  }
  p.record.job(end);
}

async function contribute(p: Page): Promise<void> {
  const { store } = p;
  const picker = store.state.picker;
  const chosen = picker?.selected();
  if (!picker || !chosen) return;
  picker.setDisabled(true);
  const status = byId("status");
  const progress = byId("progress");
  const loadNotes = byId("load-notes");
  const contribution = startContributing({
    agent: AGENT,
    adapter: adapterInfo(p.gpu),
    settings: store.state.settings,
    engine: p.engine(),
    gpu: () => helloGpu(p),
    backoffMs: backoffMs(),
    signals: { document, quietMs: idleMs() },
    onView: (view) => {
      renderStatus(status, view);
      store.update({ view });
      if (view.tabId) void p.ledger.setIdentity("nodeId", view.tabId).catch(() => {});
    },
    onControl: (control) => {
      p.controls.show(control);
      store.update({ control });
    },
    onJobEnd: (end) => jobEnded(p, end),
    onCredit: (jobId, credit) => p.record.credit(jobId, credit),
  });
  const view = contribution.contributor.snapshot;
  renderStatus(status, view);
  store.update({ contribution, view });

  if (!store.state.benchmark) await measure(p);
  try {
    await startWithFallback(
      chosen,
      picker.eligible,
      (m) => contribution.start(m, (x) => renderProgress(progress, x)),
      // Kept beside the progress bar (which each progress step redraws), so the reason stays.
      (message) => loadNotes.append(h("p", { class: "note" }, message)),
    );
  } catch (err) {
    const message = err instanceof EngineError ? `${err.code}: ${err.message}` : String(err);
    progress.append(h("p", { class: "problem", role: "alert" }, `Loading failed — ${message}`));
    return;
  }
  p.controls.setStarted(true);
  void renderCachePanel(byId("cache"), store.state.catalog, () => store.state.view?.model ?? null);
  addEventListener("pagehide", () => contribution.stop());
}

main().catch((err: unknown) => {
  fill(
    byId("adapter"),
    h("p", { class: "problem", role: "alert" }, `Tabgrid failed to start: ${String(err)}`),
  );
});
