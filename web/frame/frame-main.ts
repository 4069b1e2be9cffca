import { normalizeSettings } from "../control/settings.js";
import { classifyCatalog } from "../../shared/models/eligibility.js";
import {
  EMBED_CHANNEL_VERSION,
  WidgetToFrameSchema,
  type EmbedStatus,
  type WidgetToFrame,
} from "../../shared/protocol/embed-messages.js";
import { EngineError } from "../engine/inference-engine.js";
import { adapterInfo, detectGpu } from "../gpu/detect-gpu.js";
import { fetchCatalog } from "../runtime/catalog-client.js";
import { startContributing, type Contribution } from "../runtime/start-contributing.js";
import type { ContributorView } from "../runtime/tab-status.js";
import { chooseEmbedModel } from "./choose-model.js";
import { askInFrame, consentShare, consentStore, hostOrigin } from "./consent.js";

/**
 * The contributor frame that embed.js opens: the same start-up as the full contributor page
 * (web/runtime/start-contributing.ts: engine Worker restarted after a crash, recovery, direct path,
 * GPU share). Its only UI is the consent question (./consent.ts): the host page's `start` only
 * asks, the visitor consents here. It talks only to its parent window, and only if the parent is
 * the origin named in `#parent=` (checked against `location.ancestorOrigins`); messages are parsed
 * with the shared schema. It does nothing until the widget sends `start`.
 */
const AGENT = "tabgrid-embed/0.1.0";
const parentOrigin = hostOrigin();
const consents = consentStore();

let status: EmbedStatus = {
  tabgrid: EMBED_CHANNEL_VERSION,
  type: "status",
  phase: "ready",
  state: null,
  connection: null,
  model: null,
  jobsServed: 0,
  progress: null,
  detail: null,
};
let running: Contribution | null = null;
let started = false;

function report(patch: Partial<EmbedStatus>): void {
  status = { ...status, ...patch };
  if (parentOrigin) window.parent.postMessage(status, parentOrigin);
}

function fromView(view: ContributorView): Partial<EmbedStatus> {
  return {
    state: view.state,
    connection: view.connection,
    model: view.model,
    jobsServed: view.jobsServed,
    phase: view.connection === "connected" ? "contributing" : status.phase,
  };
}

let asking = false;

/** Start only with the visitor's consent for this host, asking here if there is none yet. */
async function requestStart(msg: Extract<WidgetToFrame, { type: "start" }>): Promise<void> {
  if (started || asking || !parentOrigin) return;
  if (parentOrigin !== location.origin && consents.given(parentOrigin) === null) {
    asking = true;
    report({ phase: "consent" });
    const share = consentShare(msg.gpuShare);
    const yes = await askInFrame(document.getElementById("consent")!, parentOrigin, { share });
    asking = false;
    if (!yes) return report({ phase: "declined" });
    consents.remember(parentOrigin, share);
  }
  await start(msg);
}

async function start(msg: Extract<WidgetToFrame, { type: "start" }>): Promise<void> {
  if (started) return;
  started = true;
  const detection = await detectGpu();
  if (!detection.ok) {
    return report({ phase: "unsupported", detail: "This browser has no usable WebGPU adapter." });
  }
  const catalog = await fetchCatalog();
  const model = chooseEmbedModel(classifyCatalog(catalog, detection.gpu), msg.models);
  if (!model) {
    return report({
      phase: "unsupported",
      detail: "No small model this GPU can serve here; the full contributor page offers more.",
    });
  }
  report({ phase: "loading", model: model.model_id, progress: 0 });
  const contribution = startContributing({
    agent: AGENT,
    adapter: adapterInfo(detection.gpu),
    onView: (view) => report(fromView(view)),
    // The site's `data-gpu-share`, enforced by the full page's controller: after a job of d ms the
    // tab rests d·(1−s)/s ms (s clamped to 10–100 %), and backs off further if the GPU throttles.
    // Battery and activity pauses stay off (no `signals`): a cross-origin frame can read neither.
    settings: normalizeSettings({
      gpuShare: msg.gpuShare / 100,
      pauseOnBattery: false,
      pauseWhileActive: false,
    }),
  });
  running = contribution;
  try {
    await contribution.start(model, (p) =>
      report({ progress: Math.min(1, Math.max(0, p.progress)) }),
    );
  } catch (err) {
    // Stopped while loading (stop() disposed it, which fails the load with worker_stopped): the
    // widget was told "stopped" already; this is no failure to report.
    if (running !== contribution) return;
    const detail = err instanceof EngineError ? `${err.code}: ${err.message}` : String(err);
    // Free the engine and let the widget ask again (a retry needs no reload).
    contribution.dispose();
    running = null;
    started = false;
    report({ phase: "failed", state: null, detail: detail.slice(0, 500) });
  }
}

function stop(forget: boolean): void {
  if (forget && parentOrigin) consents.forget(parentOrigin);
  running?.dispose();
  running = null;
  report({ phase: "stopped", state: null, connection: null });
}

addEventListener("message", (event: MessageEvent) => {
  if (!parentOrigin || event.source !== window.parent || event.origin !== parentOrigin) return;
  const parsed = WidgetToFrameSchema.safeParse(event.data);
  if (!parsed.success) return;
  if (parsed.data.type === "start") {
    requestStart(parsed.data).catch((err: unknown) =>
      report({ phase: "failed", detail: String(err).slice(0, 500) }),
    );
  } else stop(parsed.data.forget === true);
});
addEventListener("pagehide", () => running?.stop());
report({ phase: "ready" });
