import { describe, expect, it } from "vitest";
import { linearBest, withBudget } from "./linear-scan.js";
import {
  objectiveMs,
  queueState,
  queueWaitMs,
  scoreTab,
  type CandidateTab,
  type MatchRequest,
} from "./score.js";

const london = { lat: 51.5074, lon: -0.1278 };
const newYork = { lat: 40.7128, lon: -74.006 };

function tab(over: Partial<CandidateTab> = {}): CandidateTab {
  return {
    id: "t",
    location: london,
    accessDelayMs: 0,
    socketRttMs: 10,
    queue: { jobsAhead: 0, freeAtMs: 0 },
    prefillTokensPerSec: 1000,
    decodeTokensPerSec: 50,
    models: ["m"],
    loadedModels: ["m"],
    coldLoadMs: 30_000,
    lastSeenMs: 1000,
    ...over,
  };
}

const req: MatchRequest = {
  clientLocation: london,
  model: "m",
  promptTokens: 500,
  maxTokens: 100,
  stream: true,
};

describe("scoreTab", () => {
  it("adds network, queue wait, prefill and cold load into TTFT", () => {
    const s = scoreTab(
      tab({ location: newYork, accessDelayMs: 5, queue: { jobsAhead: 2, freeAtMs: 1800 } }),
      { ...req, model: "m" },
      1000,
    );
    expect(s.networkMs).toBeCloseTo(5570 / 48 + 5 + 10, 0);
    expect(s.queueMs).toBe(800);
    expect(s.prefillMs).toBe(500);
    expect(s.coldLoadMs).toBe(0);
    expect(s.ttftMs).toBeCloseTo(s.networkMs + 800 + 500, 9);
    expect(s.objectiveMs).toBe(s.ttftMs);
  });

  it("charges the cold-load penalty when the model is not resident", () => {
    const s = scoreTab(tab({ models: ["m", "x"], loadedModels: ["x"] }), req, 0);
    expect(s.coldLoadMs).toBe(30_000);
    expect(s.ttftMs).toBe(10 + 500 + 30_000);
  });

  it("minimises total time for non-streaming requests", () => {
    const s = scoreTab(tab(), { ...req, stream: false }, 0);
    expect(s.decodeMs).toBe(2000);
    expect(s.totalMs).toBe(s.ttftMs + 2000);
    expect(s.objectiveMs).toBe(s.totalMs);
    expect(objectiveMs(tab(), { ...req, stream: false }, 0)).toBe(s.objectiveMs);
  });

  it("counts no wait for an idle tab or a queue that should be done", () => {
    expect(queueWaitMs({ jobsAhead: 0, freeAtMs: 9e9 }, 0)).toBe(0);
    expect(queueWaitMs({ jobsAhead: 1, freeAtMs: 100 }, 500)).toBe(0);
    expect(queueWaitMs(queueState(2, 3000, 1000), 2500)).toBe(1500);
  });
});

describe("choosing on the estimate", () => {
  it("prefers a fast tab farther away over a slow one nearby when prefill dominates", () => {
    const slowNear = tab({ id: "near", prefillTokensPerSec: 100 });
    const fastFar = tab({ id: "far", location: newYork, prefillTokensPerSec: 2000 });
    expect(linearBest([slowNear, fastFar], req, 0)?.tab.id).toBe("far");
    // …but for a tiny prompt the round trip dominates and the near tab wins.
    expect(linearBest([slowNear, fastFar], { ...req, promptTokens: 5 }, 0)?.tab.id).toBe("near");
  });

  it("prefers a near busy tab to a far idle one only when its wait is short", () => {
    const busy = tab({ id: "busy", queue: { jobsAhead: 1, freeAtMs: 50 } });
    const idleFar = tab({ id: "idle", location: newYork });
    expect(linearBest([busy, idleFar], req, 0)?.tab.id).toBe("busy");
    busy.queue.freeAtMs = 5000;
    expect(linearBest([busy, idleFar], req, 0)?.tab.id).toBe("idle");
  });

  it("skips tabs that do not serve the model or are stale", () => {
    const other = tab({ id: "other", models: ["x"], loadedModels: ["x"] });
    const stale = tab({ id: "stale", lastSeenMs: 0 });
    expect(linearBest([other, stale], req, 100_000, 45_000)).toBeNull();
  });
});

describe("budget filter", () => {
  it("matches when the best estimate fits the budget and reports the miss otherwise", () => {
    const best = linearBest([tab()], req, 0);
    expect(withBudget(best, { ...req, latencyBudgetMs: 600 }).kind).toBe("match");
    const miss = withBudget(best, { ...req, latencyBudgetMs: 400 });
    expect(miss.kind).toBe("over_budget");
    if (miss.kind === "over_budget") expect(miss.best.estimate.ttftMs).toBe(510);
    expect(withBudget(null, req).kind).toBe("no_tabs");
  });

  it("applies the budget to total time for non-streaming requests", () => {
    const best = linearBest([tab()], { ...req, stream: false }, 0);
    expect(withBudget(best, { ...req, stream: false, latencyBudgetMs: 1000 }).kind).toBe(
      "over_budget",
    );
    expect(withBudget(best, { ...req, stream: false, latencyBudgetMs: 3000 }).kind).toBe("match");
  });
});
