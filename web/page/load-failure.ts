import { EngineError } from "../engine/inference-engine.js";
import type { Contribution } from "../runtime/start-contributing.js";
import { fill, h } from "../ui/dom.js";
import type { Page } from "./page.js";

/**
 * A load that failed leaves nothing half-started: the contribution is disposed (controls, watchers,
 * its engine Worker — the next attempt gets a fresh one), the state is no longer "loading" (so the
 * "GPU working" badge goes off), and the contributor can press "Try again" or pick another model
 * without reloading the page (which would also forget their consent).
 */
export function loadFailed(p: Page, contribution: Contribution, err: unknown): void {
  const message = err instanceof EngineError ? `${err.code}: ${err.message}` : String(err);
  contribution.dispose();
  p.dropEngine();
  const status = document.getElementById("status");
  if (status) {
    status.dataset.state = "stopped";
    status.dataset.connection = "not started";
    fill(
      status,
      h("h2", {}, "Status"),
      h("p", { "data-field": "state" }, "Not contributing: the model did not load."),
    );
  }
  const progress = document.getElementById("progress");
  if (progress)
    fill(
      progress,
      h(
        "p",
        { class: "problem", role: "alert" },
        `Loading failed — ${message}. Try again, or choose another model under “Models this GPU can serve”.`,
      ),
    );
  p.store.update({ contribution: null, view: null, control: null, failure: message });
  p.store.state.picker?.setDisabled(false);
  p.store.state.consent?.ready(true);
  p.controls.setStarted(false);
}
