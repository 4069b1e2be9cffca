import {
  classifyGpu,
  type BenchmarkResult,
  type GpuClassification,
} from "../shared/gpu/classify.js";
import { predictDecode, speedCorrection } from "../shared/gpu/predict.js";
import type { ModelRecord } from "../shared/models/catalog.js";
import { classifyCatalog } from "../shared/models/eligibility.js";
import type { HelloGpu } from "../shared/protocol/node-messages.js";
import { Controller, type ControllerView } from "./control/controller.js";
import { startWithFallback } from "./control/load-fallback.js";
import { DEFAULT_SETTINGS, type ControlSettings } from "./control/settings.js";
import { watchActivity, watchBattery } from "./control/signals.js";
import { EngineError } from "./engine/inference-engine.js";
import { adapterInfo, detectGpu, type GpuReport } from "./gpu/detect-gpu.js";
import { adapterKey, Ledger } from "./ledger/ledger.js";
import { connectUrl, fetchCatalog } from "./runtime/catalog-client.js";
import { Contributor, type ContributorView, type JobEnd } from "./runtime/contributor.js";
import { browserTabIdentity } from "./runtime/tab-identity.js";
import { peerDirectSender } from "./direct/tab-sender.js";
import { browserTimers } from "./runtime/timers.js";
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
import { startEngineWorker } from "./engine-client/worker-engine.js";
import { RestartingEngine } from "./engine-client/restarting-engine.js";

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

interface Page {
  gpu: GpuReport;
  ledger: Ledger;
  settings: ControlSettings;
  classification: GpuClassification;
  benchmark: BenchmarkResult | null;
  catalog: ModelRecord[];
  picker: ModelPicker | null;
  gpuPanel: GpuPanel;
  dashboard: Dashboard;
  controls: ControlsPanel;
  engine: RestartingEngine | null;
  benchmarking: Promise<void> | null;
  view: ContributorView | null;
  control: ControllerView | null;
  correction: number | null;
  controller: Controller | null;
  /** The ledger write of the last finished job; its credit is recorded after it. */
  recording: Promise<unknown>;
}

function indicator(active: boolean, text: string): void {
  const el = byId("gpu-indicator");
  el.dataset.active = String(active);
  el.textContent = active ? `GPU working: ${text}` : "GPU not in use by Tabgrid";
  document.title = `${active ? "● " : ""}Tabgrid — contribute your GPU`;
}

function refreshState(p: Page): void {
  const words = stateWords(p.view, p.control, p.picker?.selected()?.model_id ?? null);
  p.dashboard.state(words);
  const working = gpuWorking(p.view, p.benchmarking !== null);
  indicator(working, p.benchmarking ? "measuring" : words);
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

function predictions(p: Page) {
  return (m: ModelRecord) => predictDecode(m, p.classification, p.correction);
}

function engineOf(p: Page): RestartingEngine {
  p.engine ??= new RestartingEngine(startEngineWorker);
  return p.engine;
}

/** Run the WGSL benchmarks in the engine Worker, store them, re-classify and re-predict. */
function measure(p: Page): Promise<void> {
  if (p.benchmarking) return p.benchmarking;
  const run = async () => {
    p.gpuPanel.progress({ progress: 0, text: "Starting the benchmark…" });
    refreshState(p);
    try {
      const result = await engineOf(p).benchmark(benchmarkMs(), (x) => p.gpuPanel.progress(x));
      p.benchmark = result;
      p.classification = classifyGpu(p.gpu, result);
      await p.ledger.saveBenchmark(adapterKey(p.gpu), result).catch(() => {});
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      byId("gpu-class").append(
        h("p", { class: "problem", role: "alert" }, `The benchmark failed: ${message}`),
      );
    } finally {
      p.benchmarking = null;
      p.gpuPanel.progress(null);
      p.gpuPanel.render(p.classification);
      p.picker?.setPredictions(predictions(p));
      refreshState(p);
    }
  };
  p.benchmarking = run();
  return p.benchmarking;
}

function helloGpu(p: Page): HelloGpu {
  const b = p.benchmark;
  return {
    class: p.classification.class,
    profile: p.classification.profile?.id ?? null,
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
  const p: Page = {
    gpu,
    ledger,
    settings,
    classification: classifyGpu(gpu, benchmark),
    benchmark,
    catalog: [],
    picker: null,
    gpuPanel: renderGpuPanel(byId("gpu-class"), () => void measure(p)),
    dashboard: renderDashboard(byId("dashboard"), () => void exportLedger(ledger)),
    controls: renderControls(byId("controls"), settings, {
      onSettings: (s) => {
        p.settings = s;
        void ledger.saveSettings(s);
        p.controller?.updateSettings(s);
      },
      onPause: (paused) => p.controller?.setUserPaused(paused),
    }),
    engine: null,
    benchmarking: null,
    view: null,
    control: null,
    correction: null,
    controller: null,
    recording: Promise.resolve(),
  };
  p.gpuPanel.render(p.classification);
  refreshState(p);
  void refreshLedger(p);

  try {
    p.catalog = await fetchCatalog();
    p.picker = renderModelPicker(
      byId("models"),
      classifyCatalog(p.catalog, {
        ...gpu,
        usableMemoryMB: p.classification.usableMemoryMB,
        profileName: p.classification.profile?.name ?? null,
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
  void renderCachePanel(byId("cache"), p.catalog, () => p.view?.model ?? null);
  refreshState(p);
  if (!p.picker.selected()) return;

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

function jobEnded(p: Page, end: JobEnd): void {
  p.controller?.jobEnded(end);
  if (end.outcome === "done" && end.decodeTokensPerSecond !== null) {
    const model = p.catalog.find((m) => m.model_id === end.model);
    const predicted = model ? predictDecode(model, p.classification).tokensPerSecond : null;
    if (predicted) {
      p.correction = speedCorrection(end.decodeTokensPerSecond, predicted) ?? p.correction;
      p.picker?.setPredictions(predictions(p));
    }
  }
  p.recording = p.ledger
    .recordJob(end)
    .then(() => refreshLedger(p))
    .catch((err: unknown) => console.warn("ledger: could not record the job", err));
}

/** The coordinator's credit for a job arrives after job.done: record it once the job is stored. */
function credited(p: Page, jobId: string, credit: number): void {
  p.recording = p.recording
    .then(() => p.ledger.recordCredit(jobId, credit))
    .then(() => refreshLedger(p))
    .catch((err: unknown) => console.warn("ledger: could not record the credit", err));
}

async function contribute(p: Page): Promise<void> {
  const picker = p.picker;
  const chosen = picker?.selected();
  if (!picker || !chosen) return;
  picker.setDisabled(true);
  const status = byId("status");
  const progress = byId("progress");
  const loadNotes = byId("load-notes");
  const engine = engineOf(p);
  const contributor = new Contributor({
    engine,
    url: connectUrl(),
    adapter: adapterInfo(p.gpu),
    agent: AGENT,
    identity: browserTabIdentity(),
    gpu: () => helloGpu(p),
    onJobEnd: (end) => jobEnded(p, end),
    onCredit: (jobId, credit) => credited(p, jobId, credit),
    // Callers that asked for the direct WebRTC path also get tokens over a data channel.
    direct: peerDirectSender({ origin: location.origin }),
    onChange: (view) => {
      p.view = view;
      renderStatus(status, view);
      refreshState(p);
      if (view.nodeId) void p.ledger.setIdentity("nodeId", view.nodeId).catch(() => {});
    },
  });
  const controller = new Controller({
    target: contributor,
    settings: p.settings,
    timers: browserTimers,
    backoffMs: backoffMs(),
    onChange: (v) => {
      p.control = v;
      p.controls.show(v);
      refreshState(p);
    },
  });
  p.controller = controller;
  p.view = contributor.snapshot;
  renderStatus(status, contributor.snapshot);
  engine.onCrash((e) => contributor.engineFailed(e));
  // Power and presence are followed from the start, so a tab on battery never begins serving.
  void watchBattery((onBattery) => controller.batteryChanged(onBattery));
  watchActivity(document, (active) => controller.activityChanged(active), {
    timers: browserTimers,
    quietMs: idleMs(),
  });

  if (!p.benchmark) await measure(p);
  try {
    await startWithFallback(
      chosen,
      picker.eligible,
      (m) => contributor.start(m, (x) => renderProgress(progress, x)),
      // Kept beside the progress bar (which each progress step redraws), so the reason stays.
      (message) => loadNotes.append(h("p", { class: "note" }, message)),
    );
  } catch (err) {
    const message = err instanceof EngineError ? `${err.code}: ${err.message}` : String(err);
    progress.append(h("p", { class: "problem", role: "alert" }, `Loading failed — ${message}`));
    return;
  }
  p.controls.setStarted(true);
  void renderCachePanel(byId("cache"), p.catalog, () => p.view?.model ?? null);
  addEventListener("pagehide", () => contributor.stop());
}

main().catch((err: unknown) => {
  fill(
    byId("adapter"),
    h("p", { class: "problem", role: "alert" }, `Tabgrid failed to start: ${String(err)}`),
  );
});
