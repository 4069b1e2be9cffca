import { classifyGpu } from "../shared/gpu/classify.js";
import { predictDecode, speedCorrection } from "../shared/gpu/predict.js";
import { classifyCatalog } from "../shared/models/eligibility.js";
import { startWithFallback } from "./control/load-fallback.js";
import { DEFAULT_SETTINGS } from "./control/settings.js";
import type { RestartingEngine } from "./engine-client/restarting-engine.js";
import { adapterInfo, detectGpu } from "./gpu/detect-gpu.js";
import { adapterKey, Ledger } from "./ledger/ledger.js";
import { exportLedger, ledgerWrites, refreshLedger } from "./page/ledger-view.js";
import { loadFailed } from "./page/load-failure.js";
import { helloGpu, measure, predictions } from "./page/measure.js";
import { openingState, type Page, type PageState } from "./page/page.js";
import { createStore } from "./page/store.js";
import { backoffMs, idleMs } from "./page/url-timings.js";
import { fetchCatalog } from "./runtime/catalog-client.js";
import type { JobEnd } from "./runtime/job-runner.js";
import { claimEngine, engineHeldElsewhere } from "./runtime/engine-lock.js";
import { createEngine, startContributing } from "./runtime/start-contributing.js";
import { renderTabNotes, type TabNotes } from "./tab-link/tab-notes.js";
import { renderAdapter } from "./ui/adapter-panel.js";
import { renderCachePanel } from "./ui/cache-panel.js";
import { renderConsent } from "./ui/consent-panel.js";
import { renderControls } from "./ui/controls-panel.js";
import { renderDashboard } from "./ui/dashboard.js";
import { renderCreditLink } from "./page/credit-link-view.js";
import { signWithStoredIdentity } from "./runtime/tab-identity.js";
import { byId, fill, h } from "./ui/dom.js";
import { renderGpuPanel } from "./ui/gpu-panel.js";
import { renderModelPicker, type ModelPicker } from "./ui/model-picker.js";
import { gpuWorking, stateWords } from "./ui/state-words.js";
import { verdictText } from "./ui/verdict.js";
import { renderProgress, renderStatus } from "./ui/status-panel.js";

/**
 * The contributor page: show the GPU, its class and what it can serve (predicted speeds, labelled
 * as predictions), wait for consent, measure the GPU if it has not been measured, load the model in
 * the engine Worker and contribute — under the contributor's controls, with a local ledger and a
 * dashboard. Nothing is downloaded and no socket opens before consent. The page's state lives in
 * a small typed store (page/store.ts, fields in page/page.ts); contributing starts through the
 * same start-up as the embedded frame (runtime/start-contributing.ts).
 */
const AGENT = "tabgrid-web/0.1.0";
/**
 * The model this tab contributes with, kept for the tab's session (sessionStorage survives the
 * browser discarding a background tab): after a discard the page reloads and resumes by itself.
 */
const CONTRIBUTING_KEY = "tabgrid-contributing";
let engine: RestartingEngine | null = null;
let notes: TabNotes | null = null;

function indicator(active: boolean, text: string): void {
  const el = byId("gpu-indicator");
  el.dataset.active = String(active);
  el.hidden = !active;
  el.textContent = active ? `GPU working: ${text}` : "";
  document.title = `${active ? "● " : ""}Tabgrid — contribute your GPU`;
}

/** The state in words and the "GPU working" badge: re-rendered on every change they read. */
function renderState(p: Page): void {
  const { view, control, picker, measuring } = p.store.state;
  const words = stateWords(view, control, picker?.selected()?.model_id ?? null);
  p.dashboard.state(words);
  indicator(gpuWorking(view, measuring !== null), measuring ? "measuring" : words);
  const chosen = picker?.selected();
  if (picker)
    byId("verdict").textContent = verdictText(
      p.store.state.classification,
      chosen,
      chosen ? predictions(p)(chosen) : undefined,
      picker.recommended().length,
    );
}

async function main(): Promise<void> {
  const detection = await detectGpu();
  renderAdapter(byId("adapter"), detection);
  if (!detection.ok) {
    byId("verdict").textContent = `This browser cannot contribute: ${detection.message}`;
    fill(byId("models"));
    return;
  }
  const gpu = detection.gpu;
  const ledger = new Ledger();
  const settings = await ledger.settings().catch(() => DEFAULT_SETTINGS);
  const benchmark = await ledger.benchmark(adapterKey(gpu)).catch(() => null);
  const store = createStore<PageState>(
    openingState(settings, classifyGpu(gpu, benchmark), benchmark),
  );
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
    dropEngine: () => {
      engine = null;
    },
    record: ledgerWrites(ledger, () => refreshLedger(ledger, p.dashboard)),
  };
  // The state words read these fields; everything else renders where it changes.
  const shown: (keyof PageState)[] = [
    "view",
    "control",
    "measuring",
    "picker",
    "classification",
    "correction",
  ];
  store.subscribe((_, changed) => {
    if (shown.some((key) => changed.has(key))) renderState(p);
  });
  p.gpuPanel.render(store.state.classification);
  renderState(p);
  void refreshLedger(ledger, p.dashboard);
  renderCreditLink(byId("credit"), (text) => signWithStoredIdentity(text));

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
  picker.select.addEventListener("change", () => renderState(p));
  void renderCachePanel(byId("cache"), store.state.catalog, () => store.state.view?.model ?? null);
  if (!picker.selected()) return;

  const consent = renderConsent(byId("consent-panel"), () => void contribute(p, false));
  store.update({ consent });
  consent.ready();
  notes = renderTabNotes();
  const resumeModel = sessionStorage.getItem(CONTRIBUTING_KEY);
  const discarded = (document as Document & { wasDiscarded?: boolean }).wasDiscarded === true;
  if (discarded && resumeModel) {
    const select = document.getElementById("model-select") as HTMLSelectElement | null;
    if (select && picker.eligible.some((m) => m.model_id === resumeModel)) {
      select.value = resumeModel;
      notes.note(
        "The browser unloaded this tab in the background to save memory; it reloaded and is " +
          "contributing again under the same identity.",
      );
      void contribute(p, false);
      return;
    }
  }
  if (await engineHeldElsewhere()) {
    notes.otherTab(
      "Another Tabgrid tab in this browser is contributing this GPU now. One tab serves at a " +
        "time; press “Contribute this GPU” here to take over from it.",
    );
  }
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

/**
 * Consent given: claim the browser's one engine (engine-lock.ts) — or offer to take it over from
 * the tab that holds it — then start contributing.
 */
async function contribute(p: Page, steal: boolean): Promise<void> {
  const { store } = p;
  const picker = store.state.picker;
  const chosen = picker?.selected();
  if (!picker || !chosen) return;
  const claim = await claimEngine(steal);
  if (!claim) {
    notes?.otherTab(
      "Another Tabgrid tab in this browser is already contributing this GPU. One tab serves at " +
        "a time, so the two don't compete for the GPU.",
      { label: "Contribute from this tab instead", onClick: () => void contribute(p, true) },
    );
    return;
  }
  notes?.clear();
  picker.setDisabled(true);
  store.state.consent?.started();
  store.update({ failure: null });
  byId("load-notes").replaceChildren();
  const status = byId("status");
  const progress = byId("progress");
  const loadNotes = byId("load-notes");
  /** Another tab took the engine over (below): this contribution is gone. */
  let lost = false;
  const contribution = startContributing({
    agent: AGENT,
    adapter: adapterInfo(p.gpu),
    settings: store.state.settings,
    engine: p.engine(),
    gpu: () => helloGpu(p),
    backoffMs: backoffMs(),
    signals: { document, quietMs: idleMs() },
    // A Pause pressed before (this tab's earlier contribution, taken over or failed) still holds.
    paused: p.controls.paused,
    onView: (view) => {
      renderStatus(status, view);
      // Once taken over, the status panel keeps this contribution's last words ("stopped"), but
      // the state words and the "GPU working" badge no longer follow it.
      if (lost) return;
      store.update({ view });
      // Kept under the wire's name ("nodeId"), as earlier ledgers and exports have it.
      if (view.tabId) void p.ledger.setIdentity("nodeId", view.tabId).catch(() => {});
    },
    onControl: (control) => {
      if (lost) return;
      p.controls.show(control);
      store.update({ control });
    },
    onJobEnd: (end) => jobEnded(p, end),
    onCredit: (jobId, credit) => p.record.credit(jobId, credit),
    onBalance: (balance) => p.record.balance(balance),
  });
  const view = contribution.contributor.snapshot;
  renderStatus(status, view);
  store.update({ contribution, view });
  // Another tab took over: stop serving here and free the GPU (a fresh engine if we take it back).
  // Terminating the engine fails the benchmark or load in flight (worker_stopped), so the steps
  // below stop at the next check of `lost` instead of reporting a failure on the reset page.
  void claim.lost.then(() => {
    lost = true;
    contribution.dispose();
    p.dropEngine();
    sessionStorage.removeItem(CONTRIBUTING_KEY);
    store.update({ contribution: null, view: null, control: null });
    picker.setDisabled(false);
    p.controls.setStarted(false);
    store.state.consent?.ready();
    notes?.otherTab(
      "Another Tabgrid tab in this browser took over contributing; this tab has stopped serving.",
      { label: "Contribute from this tab again", onClick: () => void contribute(p, true) },
    );
  });

  if (!store.state.benchmark) await measure(p);
  if (lost) return;
  try {
    await startWithFallback(
      chosen,
      picker.eligible,
      (m) => contribution.start(m, (x) => renderProgress(progress, x)),
      // Kept beside the progress bar (which each progress step redraws), so the reason stays.
      (message) => loadNotes.append(h("p", { class: "note" }, message)),
    );
  } catch (err) {
    if (lost) return;
    claim.release();
    loadFailed(p, contribution, err);
    return;
  }
  if (lost) return;
  p.controls.setStarted(true);
  sessionStorage.setItem(
    CONTRIBUTING_KEY,
    contribution.contributor.snapshot.model ?? chosen.model_id,
  );
  void renderCachePanel(byId("cache"), store.state.catalog, () => store.state.view?.model ?? null);
  addEventListener("pagehide", () => contribution.stop());
}

main().catch((err: unknown) => {
  fill(
    byId("adapter"),
    h("p", { class: "problem", role: "alert" }, `Tabgrid failed to start: ${String(err)}`),
  );
});
