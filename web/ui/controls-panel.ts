import type { ControllerView } from "../control/controller.js";
import type { ControlSettings } from "../control/settings.js";
import { fill, h } from "./dom.js";

/**
 * The contributor's controls: start/pause, the GPU share, pause on battery, pause while using this
 * page. Every control is a labelled native input (keyboard and screen-reader friendly); changes are
 * saved at once.
 */
export interface ControlsPanel {
  /**
   * The contributor pressed Pause (and not Resume since). Kept across contributions — a take-over
   * by another tab and back, a "Try again" after a failed load: the page starts the next one paused
   * (`startContributing({ paused })`), since someone who paused most likely still wants to be.
   */
  readonly paused: boolean;
  /** Show the Pause button while a contribution runs; hide it otherwise. */
  setStarted(started: boolean): void;
  /** The controller's state; the Pause button follows its "user" cause, so it cannot disagree. */
  show(view: ControllerView): void;
}

export function renderControls(
  region: HTMLElement,
  settings: ControlSettings,
  handlers: {
    onSettings(s: ControlSettings): void;
    onPause(paused: boolean): void;
  },
): ControlsPanel {
  let current = { ...settings };
  let paused = false;
  const pause = h(
    "button",
    { id: "pause", type: "button", "aria-pressed": "false", hidden: true },
    "Pause",
  );
  const showPaused = (next: boolean) => {
    paused = next;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  };
  pause.addEventListener("click", () => {
    showPaused(!paused);
    handlers.onPause(paused);
  });
  const share = h("input", {
    id: "gpu-share",
    type: "range",
    min: 10,
    max: 100,
    step: 10,
    value: Math.round(current.gpuShare * 100),
    "aria-describedby": "gpu-share-hint",
  });
  const shareOut = h(
    "output",
    { for: "gpu-share", id: "gpu-share-value" },
    `${Math.round(current.gpuShare * 100)}%`,
  );
  const battery = h("input", { id: "pause-on-battery", type: "checkbox" });
  battery.checked = current.pauseOnBattery;
  const active = h("input", { id: "pause-while-active", type: "checkbox" });
  active.checked = current.pauseWhileActive;
  const status = h("p", { id: "control-status", "aria-live": "polite", class: "hint" });
  const save = () => {
    current = {
      gpuShare: Number(share.value) / 100,
      pauseOnBattery: battery.checked,
      pauseWhileActive: active.checked,
    };
    shareOut.textContent = `${share.value}%`;
    handlers.onSettings(current);
  };
  share.addEventListener("input", save);
  battery.addEventListener("change", save);
  active.addEventListener("change", save);
  fill(
    region,
    h("h2", {}, "Your controls"),
    h("p", {}, pause),
    h(
      "p",
      {},
      h("label", { for: "gpu-share" }, "GPU share: "),
      share,
      " ",
      shareOut,
      h(
        "span",
        { id: "gpu-share-hint", class: "hint block" },
        "At most this share of the time: after each job the tab rests before taking another.",
      ),
    ),
    h(
      "p",
      {},
      battery,
      h("label", { for: "pause-on-battery" }, " Pause while on battery (resume when charging)"),
    ),
    h("p", {}, active, h("label", { for: "pause-while-active" }, " Pause while I use this page")),
    status,
  );
  return {
    get paused() {
      return paused;
    },
    setStarted(started) {
      pause.hidden = !started;
    },
    show(view) {
      showPaused(view.causes.includes("user"));
      const parts: string[] = [];
      if (view.effectiveShare < current.gpuShare)
        parts.push(
          `GPU share lowered to ${Math.round(view.effectiveShare * 100)}% while the GPU is slower than usual.`,
        );
      if (view.speedRatio !== null)
        parts.push(`Speed: ${Math.round(view.speedRatio * 100)}% of this tab's own baseline.`);
      status.textContent = parts.join(" ");
      region.dataset.causes = view.causes.join(" ");
    },
  };
}
