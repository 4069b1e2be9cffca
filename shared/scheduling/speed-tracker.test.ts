import { describe, expect, it } from "vitest";
import { objectiveMs, type CandidateTab, type MatchRequest } from "./score.js";
import { SpeedTracker } from "./speed-tracker.js";

const here = { lat: 48.85, lon: 2.35 };
const tab: CandidateTab = {
  id: "t1",
  location: here,
  accessDelayMs: 0,
  socketRttMs: 20,
  queue: { jobsAhead: 0, freeAtMs: 0 },
  prefillTokensPerSec: 1000,
  decodeTokensPerSec: 40,
  models: ["m"],
  loadedModels: ["m"],
  coldLoadMs: 10_000,
  lastSeenMs: 0,
};

describe("SpeedTracker", () => {
  it("leaves an unobserved tab as benchmarked", () => {
    const tracker = new SpeedTracker();
    expect(tracker.correct(tab)).toBe(tab);
    expect(tracker.correction("t1")).toMatchObject({
      prefillFactor: 1,
      decodeFactor: 1,
      samples: 0,
    });
  });

  it("converges to the true speeds and network when the tab reports its prefill time", () => {
    const tracker = new SpeedTracker({ alpha: 0.3 });
    // Truth: prefill 600 tok/s (benchmark said 1000), decode 20 tok/s, network 20 ms slower.
    for (let i = 0; i < 40; i++) {
      const prompt = 200 + i * 10;
      const prefillMs = (prompt * 1000) / 600;
      tracker.observe(tab, {
        clientLocation: here,
        promptTokens: prompt,
        prefillMs,
        ttftMs: 40 + prefillMs,
        completionTokens: 101,
        decodeMs: 5000,
      });
    }
    const fixed = tracker.correct(tab);
    expect(fixed.prefillTokensPerSec).toBeCloseTo(600, 0);
    expect(fixed.decodeTokensPerSec).toBeCloseTo(20, 1);
    expect(fixed.socketRttMs).toBeCloseTo(40, 1);
  });

  it("separates prefill from network from TTFT alone over varied prompt sizes", () => {
    const tracker = new SpeedTracker({ alpha: 0.2 });
    const sizes = [50, 2000, 300, 1200, 80, 3000];
    for (let i = 0; i < 300; i++) {
      const prompt = sizes[i % sizes.length]!;
      tracker.observe(tab, {
        clientLocation: here,
        promptTokens: prompt,
        ttftMs: 60 + (prompt * 1000) / 500,
      });
    }
    const fixed = tracker.correct(tab);
    expect(fixed.prefillTokensPerSec).toBeGreaterThan(450);
    expect(fixed.prefillTokensPerSec).toBeLessThan(550);
    expect(fixed.socketRttMs).toBeGreaterThan(40);
    expect(fixed.socketRttMs).toBeLessThan(80);
  });

  it("makes predictions closer to what is then observed", () => {
    const tracker = new SpeedTracker();
    const req: MatchRequest = {
      clientLocation: here,
      model: "m",
      promptTokens: 800,
      maxTokens: 50,
      stream: true,
    };
    const truth = 35 + 800 / 0.4; // prefill 400 tok/s, network 35 ms
    const before = Math.abs(objectiveMs(tab, req, 0) - truth);
    for (let i = 0; i < 10; i++) {
      tracker.observe(tab, {
        clientLocation: here,
        promptTokens: 800,
        prefillMs: 2000,
        ttftMs: truth,
      });
    }
    const after = Math.abs(objectiveMs(tracker.correct(tab), req, 0) - truth);
    expect(after).toBeLessThan(before / 10);
  });

  it("ignores decode samples it cannot compute a rate from and subtracts cold loads", () => {
    const tracker = new SpeedTracker();
    const c = tracker.observe(tab, {
      clientLocation: here,
      promptTokens: 100,
      prefillMs: 100,
      coldLoadMs: 10_000,
      ttftMs: 10_120,
      completionTokens: 1,
      decodeMs: 0,
    });
    expect(c.decodeFactor).toBe(1);
    expect(c.prefillFactor).toBeCloseTo(1, 9);
    expect(c.networkBiasMs).toBeCloseTo(0, 9);
    tracker.forget("t1");
    expect(tracker.correction("t1").samples).toBe(0);
  });
});
