import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeElement, installFakeDocument } from "../../test/support/fake-dom.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { Controller, type ControllerView } from "../control/controller.js";
import { DEFAULT_SETTINGS } from "../control/settings.js";
import { renderControls } from "./controls-panel.js";

/**
 * The Pause button tells the truth about the controller that serves: across a take-over by another
 * tab and back (main.ts: setStarted(false), then a new contribution with a new Controller), a Pause
 * the contributor pressed still holds — the new contribution starts paused — and the button says
 * "Resume" exactly while the controller holds the "user" cause.
 */
let uninstall = () => {};
beforeAll(() => {
  uninstall = installFakeDocument();
});
afterAll(() => uninstall());

function setup() {
  const region = new FakeElement("section");
  let controller: Controller | null = null;
  const panel = renderControls(region as unknown as HTMLElement, DEFAULT_SETTINGS, {
    onSettings: () => {},
    onPause: (paused) => controller?.setUserPaused(paused),
  });
  /** A new contribution's Controller, as startContributing makes it (with the page's `paused`). */
  const contribute = (paused: boolean) => {
    const target = {
      paused: false,
      pause: () => (target.paused = true),
      resume: () => (target.paused = false),
    };
    controller = new Controller({
      target,
      settings: DEFAULT_SETTINGS,
      timers: new ManualTimers(),
      onChange: (view) => panel.show(view),
    });
    if (paused) controller.setUserPaused(true);
    panel.setStarted(true);
    return { controller, target };
  };
  const button = region.find("pause")!;
  return { panel, button, contribute };
}

const view = (causes: ControllerView["causes"]): ControllerView => ({
  causes,
  headline: null,
  effectiveShare: 1,
  speedRatio: null,
  restUntil: null,
});

describe("the Pause button", () => {
  it("keeps a pause across a take-over and back: the new contribution starts paused", () => {
    const { panel, button, contribute } = setup();
    contribute(panel.paused);
    button.click();
    expect(button.textContent).toBe("Resume");

    // Another tab takes over; the contributor takes it back.
    panel.setStarted(false);
    const { controller, target } = contribute(panel.paused);
    expect(panel.paused).toBe(true);
    expect(controller.view.causes).toEqual(["user"]);
    expect(target.paused).toBe(true);
    expect(button.textContent).toBe("Resume");
    expect(button.getAttribute("aria-pressed")).toBe("true");

    // The first click resumes.
    button.click();
    expect(controller.view.causes).toEqual([]);
    expect(target.paused).toBe(false);
    expect(button.textContent).toBe("Pause");
    expect(button.getAttribute("aria-pressed")).toBe("false");
  });

  it("follows the controller's user cause, whatever the button last showed", () => {
    const { panel, button } = setup();
    panel.show(view(["user", "duty"]));
    expect([button.textContent, button.getAttribute("aria-pressed"), panel.paused]).toEqual([
      "Resume",
      "true",
      true,
    ]);
    panel.show(view(["battery"]));
    expect([button.textContent, button.getAttribute("aria-pressed"), panel.paused]).toEqual([
      "Pause",
      "false",
      false,
    ]);
  });
});
