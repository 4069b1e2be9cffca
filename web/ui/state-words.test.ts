import { describe, expect, it } from "vitest";
import type { ControllerView } from "../control/controller.js";
import type { ContributorView } from "../runtime/tab-status.js";
import { gpuWorking, stateWords } from "./state-words.js";

const model = "Qwen2.5-1.5B-Instruct-q4f32_1-MLC";

function view(patch: Partial<ContributorView> = {}): ContributorView {
  return {
    state: "idle",
    connection: "connected",
    connectionDetail: null,
    model,
    tabId: "n1",
    jobsServed: 0,
    lastTokensPerSecond: null,
    error: null,
    reason: null,
    serving: null,
    trust: null,
    ...patch,
  };
}

describe("stateWords", () => {
  it("names the model and the client's place while serving", () => {
    const busy = view({ state: "busy", serving: { model, clientPlace: "Frankfurt, DE" } });
    expect(stateWords(busy, null, null)).toBe(`serving ${model} to a client in Frankfurt, DE`);
    expect(gpuWorking(busy, false)).toBe(true);
  });

  it("says only the model when the place is unknown", () => {
    expect(
      stateWords(view({ state: "busy", serving: { model, clientPlace: null } }), null, null),
    ).toBe(`serving ${model}`);
    expect(stateWords(view({ state: "busy" }), null, null)).toBe(`serving ${model}`);
  });

  it("says why the tab is paused, the controller's cause first", () => {
    const control: ControllerView = {
      causes: ["battery"],
      headline: "on battery",
      effectiveShare: 1,
      speedRatio: null,
      restUntil: null,
    };
    expect(stateWords(view({ state: "paused", reason: "on battery" }), control, null)).toBe(
      "paused: on battery",
    );
    expect(
      stateWords(
        view({ state: "loading", model: null, reason: "device_lost: reloading the model" }),
        null,
        model,
      ),
    ).toBe(`reloading ${model}: the GPU device was lost`);
  });

  it("before consent: what the tab would serve", () => {
    expect(stateWords(null, null, model)).toBe(
      `Not contributing yet. Ready to serve ${model} once you agree.`,
    );
    expect(gpuWorking(null, false)).toBe(false);
  });
});
