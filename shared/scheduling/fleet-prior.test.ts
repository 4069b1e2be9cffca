import { describe, expect, it } from "vitest";
import { Scheduler } from "./scheduler.js";
import { SpeedTracker } from "./speed-tracker.js";
import { candidateTab, chosenTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

/**
 * A tab nothing has been learned about yet is corrected by the fleet's median factors, not taken at
 * its benchmark's word (speed-tracker.ts, `fleetPrior`).
 */
const here = { lat: 37.8, lon: -122.4 };
const tab = (id: string) => candidateTab(id, { location: here, prefill: 1000, decode: 100 });

/** What the Region object saw of one job on `id`: `tokens` prefilled in `prefillMs`. */
const timed = (tokens: number, prefillMs: number, decodeMs = 0) => ({
  clientLocation: here,
  timedAt: "tab" as const,
  promptTokens: tokens,
  ttftMs: prefillMs + 20,
  prefillMs,
  completionTokens: decodeMs ? 11 : 0,
  decodeMs,
});

describe("the fleet's learned speeds as the prior of a tab never timed", () => {
  it("a tab never timed runs at the fleet's median factors; before any tab is timed, at its benchmark", () => {
    const tracker = new SpeedTracker({ fastStart: true });
    expect(tracker.correct(tab("new")).prefillTokensPerSec).toBe(1000);
    // Three tabs that prefill at a tenth of their benchmark and decode at a quarter of it.
    for (const id of ["a", "b", "c"]) tracker.observe(tab(id), timed(100, 1000, 400));
    const corrected = tracker.correct(tab("new"));
    expect(corrected.prefillTokensPerSec).toBeCloseTo(100);
    expect(corrected.decodeTokensPerSec).toBeCloseTo(25);
    // The new tab's own record, once timed, is its own.
    tracker.observe(tab("new"), timed(100, 100));
    expect(tracker.correct(tab("new")).prefillTokensPerSec).toBeCloseTo(1000);
  });

  it("is a median: two tabs lying about their prefill time do not move it", () => {
    const tracker = new SpeedTracker({ fastStart: true });
    for (const id of ["a", "b", "c", "d", "e"]) tracker.observe(tab(id), timed(100, 1000));
    tracker.observe(tab("slowpoke"), timed(100, 60_000));
    tracker.observe(tab("liar"), timed(100, 1));
    expect(tracker.correct(tab("new")).prefillTokensPerSec).toBeCloseTo(100);
  });

  it("leaves benchmarks as they are while the fleet runs within 3× of them, and catches up when it drifts out", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("fresh"), OPEN);
    for (const id of ["a", "b", "c"]) {
      s.put(tab(id), OPEN);
      s.observe(id, timed(100, 250)); // 0.4× their benchmarks: each tab's own error
    }
    expect(s.corrected("fresh")!.prefillTokensPerSec).toBe(1000);
    for (const id of ["d", "e", "f", "g"]) {
      s.put(tab(id), OPEN);
      s.observe(id, timed(100, 500)); // the fleet's median now 0.2×
    }
    expect(s.corrected("fresh")!.prefillTokensPerSec).toBeCloseTo(200);
  });

  it("is off with fleetPrior: false (the benchmark until the tab is timed)", () => {
    const tracker = new SpeedTracker({ fastStart: true, fleetPrior: false });
    tracker.observe(tab("a"), timed(100, 1000));
    expect(tracker.correct(tab("new")).prefillTokensPerSec).toBe(1000);
  });

  it("a follow-up goes to the tab holding its history, not to a never-timed tab whose benchmark promises more", () => {
    // What the real-engine test saw on SwiftShader: the holder learned it prefills at a fraction
    // of its benchmark; a second tab of the same hardware, never timed, still claimed the whole.
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("holder"), OPEN);
    s.put(tab("fresh"), OPEN);
    s.observe("holder", timed(40, 400)); // 100 tokens/s: a tenth of its benchmark
    s.served("holder", "conversation", 41, 1_000);
    // 9 new tokens on the holder (90 ms) against 50 on the fresh tab: 50 ms at its benchmark,
    // 500 ms at the fleet's factor.
    const affinity = { key: "conversation", cachedTokens: 41 };
    expect(chosenTab(s, matchRequest(here, 50), 2_000, affinity)).toBe("holder");
  });
});
