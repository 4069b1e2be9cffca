import { describe, expect, it } from "vitest";
import { ManualTimers } from "../../test/support/manual-timers.js";
import type { JobEnd } from "../runtime/job-runner.js";
import { Controller } from "./controller.js";
import { DEFAULT_SETTINGS, normalizeSettings, restAfter } from "./settings.js";
import { ThrottleWatch } from "./throttle-watch.js";

function setup(settings = DEFAULT_SETTINGS) {
  const timers = new ManualTimers();
  const calls: string[] = [];
  const controller = new Controller({
    target: {
      pause: (reason) => calls.push(`pause:${reason}`),
      resume: () => calls.push("resume"),
    },
    settings,
    timers,
    backoffMs: 10_000,
  });
  return { timers, calls, controller };
}

function end(durationMs: number, tps: number | null = 20, tokens = 40): JobEnd {
  return {
    jobId: "j",
    model: "m",
    startedAt: 0,
    durationMs,
    outcome: "done",
    completionTokens: tokens,
    promptTokens: 5,
    decodeTokensPerSecond: tps,
  };
}

describe("settings", () => {
  it("rests d·(1−s)/s after a job of d ms", () => {
    expect(restAfter(1000, 1)).toBe(0);
    expect(restAfter(1000, 0.5)).toBe(1000);
    expect(restAfter(1000, 0.25)).toBe(3000);
    expect(restAfter(1000, 0)).toBe(9000); // clamped to 10 %
  });

  it("normalizes stored settings", () => {
    expect(normalizeSettings(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(normalizeSettings({ gpuShare: 7, pauseOnBattery: false })).toMatchObject({
      gpuShare: 1,
      pauseOnBattery: false,
    });
  });
});

describe("Controller", () => {
  it("duty cycle: pauses after each job for the rest the share asks, then resumes", () => {
    const { timers, calls, controller } = setup({ ...DEFAULT_SETTINGS, gpuShare: 0.5 });
    controller.jobEnded(end(2000));
    expect(calls).toEqual(["pause:resting (GPU share limit)"]);
    expect(controller.view.restUntil).toBe(2000);
    timers.advance(1999);
    expect(calls).toHaveLength(1);
    timers.advance(1);
    expect(calls.at(-1)).toBe("resume");
  });

  it("shows the most important cause and resumes only when none is left", () => {
    const { calls, controller } = setup();
    controller.activityChanged(true); // pauseWhileActive is off by default
    expect(calls).toEqual([]);
    controller.batteryChanged(true);
    controller.setUserPaused(true);
    expect(controller.view.headline).toBe("paused by you");
    controller.setUserPaused(false);
    expect(calls.at(-1)).toBe("pause:on battery");
    controller.batteryChanged(false);
    expect(calls.at(-1)).toBe("resume");
  });

  it("follows settings changes (pause while active, battery)", () => {
    const { calls, controller } = setup();
    controller.activityChanged(true);
    controller.updateSettings({ ...DEFAULT_SETTINGS, pauseWhileActive: true });
    expect(calls.at(-1)).toBe("pause:you are using this page");
    controller.batteryChanged(true);
    controller.updateSettings({ ...DEFAULT_SETTINGS, pauseOnBattery: false });
    expect(calls.at(-1)).toBe("resume");
  });

  it("backs off on a sustained speed drop against its own baseline, then tries again", () => {
    const { timers, calls, controller } = setup();
    for (let i = 0; i < 3; i++) controller.jobEnded(end(100, 20));
    expect(controller.view.effectiveShare).toBe(1);
    controller.jobEnded(end(100, 10)); // one slow job: not yet
    controller.jobEnded(end(100, 10));
    expect(controller.view.causes).not.toContain("throttle");
    controller.jobEnded(end(100, 10));
    expect(controller.view.causes).toContain("throttle");
    expect(controller.view.effectiveShare).toBe(0.5);
    expect(calls.some((c) => /throttling/.test(c))).toBe(true);
    timers.advance(10_000);
    expect(controller.view.causes).not.toContain("throttle");
  });
});

describe("ThrottleWatch", () => {
  it("ignores short jobs and needs a baseline first", () => {
    const w = new ThrottleWatch();
    expect(w.record("m", 5, 2).baseline).toBeNull();
    for (const t of [30, 10, 20]) w.record("m", t, 50);
    expect(w.baseline("m")).toBe(20);
    expect(w.record("m", 19, 50).throttled).toBe(false);
  });
});
