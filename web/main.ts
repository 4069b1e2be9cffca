import { classifyCatalog } from "../shared/models/eligibility.js";
import { EngineError } from "./engine/inference-engine.js";
import { adapterInfo, detectGpu, type GpuReport } from "./gpu/detect-gpu.js";
import { connectUrl, fetchCatalog } from "./runtime/catalog-client.js";
import { Contributor } from "./runtime/contributor.js";
import { browserNodeIdentity } from "./runtime/node-identity.js";
import { renderAdapter } from "./ui/adapter-panel.js";
import { renderConsent, renderPauseToggle } from "./ui/consent-panel.js";
import { byId, fill, h } from "./ui/dom.js";
import { renderModelPicker, type ModelPicker } from "./ui/model-picker.js";
import { renderProgress, renderStatus } from "./ui/status-panel.js";
import { startEngineWorker } from "./worker/engine-client.js";

/**
 * The contributor page: show the GPU and what it can serve, wait for consent, then load the model
 * in the engine Worker and contribute. Nothing is downloaded and no socket opens before consent.
 */
const AGENT = "tabgrid-web/0.1.0";

async function main(): Promise<void> {
  const detection = await detectGpu();
  renderAdapter(byId("adapter"), detection);
  if (!detection.ok) {
    fill(byId("models"));
    return;
  }
  const gpu = detection.gpu;

  let picker: ModelPicker;
  try {
    const catalog = await fetchCatalog();
    picker = renderModelPicker(byId("models"), classifyCatalog(catalog, gpu));
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
  if (!picker.selected()) return;

  const consent = renderConsent(byId("consent-panel"), () => void contribute(gpu, picker));
  consent.disabled = false;
}

async function contribute(gpu: GpuReport, picker: ModelPicker): Promise<void> {
  const model = picker.selected();
  if (!model) return;
  picker.setDisabled(true);
  const status = byId("status");
  const progress = byId("progress");
  const engine = startEngineWorker();
  const contributor = new Contributor({
    engine,
    url: connectUrl(),
    adapter: adapterInfo(gpu),
    agent: AGENT,
    identity: browserNodeIdentity(),
    onChange: (view) => renderStatus(status, view),
  });
  renderStatus(status, contributor.snapshot);
  engine.onCrash((e) => contributor.engineFailed(e));
  try {
    await contributor.start(model, (p) => renderProgress(progress, p));
  } catch (err) {
    const message = err instanceof EngineError ? `${err.code}: ${err.message}` : String(err);
    progress.append(h("p", { class: "problem", role: "alert" }, `Loading failed — ${message}`));
    return;
  }
  renderPauseToggle(byId("consent-panel"), (paused) =>
    paused ? contributor.pause() : contributor.resume(),
  );
  addEventListener("pagehide", () => contributor.stop());
}

main().catch((err: unknown) => {
  fill(
    byId("adapter"),
    h("p", { class: "problem", role: "alert" }, `Tabgrid failed to start: ${String(err)}`),
  );
});
