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
import { showNotice, type Notice } from "./notice.js";
import { trackVisibility, type Seen, type VisibilityTracker } from "./visibility.js";

/**
 * The contributor frame that embed.js opens: the same start-up as the full contributor page
 * (web/runtime/start-contributing.ts: engine Worker restarted after a crash, recovery, direct path,
 * GPU share). Its UI is its own panel: the consent question (./consent.ts) — the host page's
 * `start` only asks, the visitor consents here, to a named GPU share — and, while it runs for
 * another site, a notice with Stop (./notice.ts); where the browser can tell, no job is taken
 * while that notice is not in front of the visitor. A later `start` may ask for a smaller share
 * than the visitor agreed to, never a larger one. It talks only to its parent window, and only if
 * the parent is the origin named in `#parent=` (checked against `location.ancestorOrigins`);
 * messages are parsed with the shared schema. It does nothing until the widget sends `start`.
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
  height: 0,
};
let running: Contribution | null = null;
let started = false;
let notice: Notice | null = null;
let watching: VisibilityTracker | null = null;
const panel = () => document.getElementById("panel")!;
const panelHeight = (): number => {
  const root = panel();
  if (root.hidden || typeof root.getBoundingClientRect !== "function") return 0;
  return Math.min(2000, Math.ceil(root.getBoundingClientRect().height));
};
// The widget sizes the frame to the panel: tell it whenever the panel's size changes.
if (typeof ResizeObserver !== "undefined") {
  new ResizeObserver(() => {
    if (panelHeight() !== status.height) report({});
  }).observe(panel());
}

function report(patch: Partial<EmbedStatus>): void {
  status = { ...status, ...patch };
  notice?.update(noticeText(status));
  status.height = panelHeight();
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

function noticeText(s: EmbedStatus): string {
  if (s.state === "paused" && running?.controller?.view.headline)
    return `Paused: ${running.controller.view.headline}.`;
  switch (s.phase) {
    case "loading":
      return `Loading ${s.model ?? "a model"}… ${Math.round((s.progress ?? 0) * 100)} %`;
    case "contributing":
      return `Contributing · ${s.jobsServed} answered`;
    default:
      return "Starting…";
  }
}

let asking = false;

/**
 * Start only with the visitor's consent for this host, asking here if there is none yet, at no more
 * than the GPU share they agreed to.
 */
async function requestStart(msg: Extract<WidgetToFrame, { type: "start" }>): Promise<void> {
  if (started || asking || !parentOrigin) return;
  let share = consentShare(msg.gpuShare);
  if (parentOrigin !== location.origin) {
    const agreed = consents.given(parentOrigin);
    if (agreed === null) {
      asking = true;
      // The question first, so the report carries its height.
      const answer = askInFrame(panel(), parentOrigin, { share });
      report({ phase: "consent" });
      const yes = await answer;
      asking = false;
      if (!yes) return report({ phase: "declined" });
      consents.remember(parentOrigin, share);
    } else share = Math.min(share, agreed);
  }
  await start(msg, share);
}

async function start(msg: Extract<WidgetToFrame, { type: "start" }>, share: number): Promise<void> {
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
  const contribution = startContributing({
    agent: AGENT,
    adapter: adapterInfo(detection.gpu),
    onView: (view) => report(fromView(view)),
    // The site's `data-gpu-share`, at most what the visitor agreed to, enforced by the full page's
    // controller: after a job of d ms the tab rests d·(1−s)/s ms (s clamped to 10–100 %), and backs
    // off further if the GPU throttles. Battery and activity pauses stay off (no `signals`): a
    // cross-origin frame can read neither.
    settings: normalizeSettings({
      gpuShare: share / 100,
      pauseOnBattery: false,
      pauseWhileActive: false,
    }),
  });
  running = contribution;
  if (parentOrigin !== location.origin) watchNotice(contribution, share);
  report({ phase: "loading", model: model.model_id, progress: 0 });
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
    closeNotice();
    report({ phase: "failed", state: null, detail: detail.slice(0, 500) });
  }
}

/**
 * Another site's page: show the notice with Stop, and take no job while it is not in front of the
 * visitor (IntersectionObserver v2: hidden, covered, clipped, or shown for less than DWELL_MS).
 * Without v2 the notice is shown and the frame cannot tell whether the host hides it.
 */
function watchNotice(contribution: Contribution, share: number): void {
  const root = panel();
  notice = showNotice(root, parentOrigin!, share, () => {
    // The visitor's Stop, in the frame: a withdrawal, as the widget's Stop is (the widget then
    // stores "no" and removes the frame).
    stop(true, "declined");
  });
  notice.update(noticeText(status));
  const held = (seen: Seen) => seen === "hidden" || seen === "settling";
  watching = trackVisibility(root, (seen) => contribution.controller?.setUnseen(held(seen)));
  // Held from the start where the browser can tell: the first report comes after a layout.
  if (held(watching.state())) contribution.controller?.setUnseen(true);
}

function closeNotice(): void {
  watching?.stop();
  watching = null;
  notice?.close();
  notice = null;
}

function stop(forget: boolean, phase: "stopped" | "declined" = "stopped"): void {
  if (forget && parentOrigin) consents.forget(parentOrigin);
  closeNotice();
  running?.dispose();
  running = null;
  report({ phase, state: null, connection: null });
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
