import { describe, expect, it } from "vitest";
import { CandidateIndex } from "./candidate-index.js";
import { linearBest, linearMatch } from "./linear-scan.js";
import { createRng, type Rng } from "./prng.js";
import type { CandidateTab, MatchRequest } from "./score.js";

const MODELS = ["small", "medium", "large"] as const;
const NOW = 1_000_000;
const STALE = 45_000;

/**
 * Random tabs drawn from small value sets on purpose: many tabs share a location, speed and queue,
 * so exact ties are common and the id tie-break is exercised.
 */
function randomTab(rng: Rng, id: string, coarse: boolean): CandidateTab {
  const grid = coarse ? 4 : 1000;
  const lat = Math.round(rng.range(-60, 70) / (130 / grid)) * (130 / grid);
  const lon = Math.round(rng.range(-180, 180) / (360 / grid)) * (360 / grid);
  const models = MODELS.filter(() => rng.next() < 0.6);
  if (models.length === 0) models.push(rng.pick(MODELS));
  const loaded = models.filter(() => rng.next() < 0.5);
  const busy = rng.next() < 0.5;
  return {
    id,
    location: { lat, lon: Math.max(-180, Math.min(180, lon)) },
    accessDelayMs: coarse ? 5 : rng.range(0, 40),
    socketRttMs: coarse ? 20 : rng.range(5, 120),
    queue: {
      jobsAhead: busy ? 1 + rng.int(3) : 0,
      freeAtMs: NOW + (coarse ? 1000 : rng.range(-500, 20_000)),
    },
    prefillTokensPerSec: coarse ? rng.pick([200, 800]) : rng.range(100, 2000),
    decodeTokensPerSec: coarse ? rng.pick([10, 40]) : rng.range(5, 80),
    models,
    loadedModels: loaded,
    coldLoadMs: coarse ? 20_000 : rng.range(5000, 90_000),
    lastSeenMs: NOW - (rng.next() < 0.1 ? STALE + 1 + rng.int(10_000) : rng.int(STALE)),
  };
}

function randomRequest(rng: Rng, coarse: boolean): MatchRequest {
  return {
    clientLocation: coarse
      ? { lat: rng.pick([0, 32.5, -32.5]), lon: rng.pick([0, 90, -90, 180]) }
      : { lat: rng.range(-60, 70), lon: rng.range(-180, 180) },
    model: rng.pick(MODELS),
    promptTokens: 1 + rng.int(3000),
    maxTokens: 1 + rng.int(1000),
    stream: rng.next() < 0.7,
  };
}

function expectSameChoice(index: CandidateIndex, req: MatchRequest): void {
  for (const idleOnly of [false, true]) {
    const fromIndex = index.best(req, NOW, idleOnly);
    const fromScan = linearBest(index.tabs(), req, NOW, STALE, idleOnly);
    expect(fromIndex?.tab.id ?? null).toBe(fromScan?.tab.id ?? null);
    expect(fromIndex?.estimate.objectiveMs).toBe(fromScan?.estimate.objectiveMs);
  }
  const budgeted = { ...req, latencyBudgetMs: 500 + (req.promptTokens % 7) * 1000 };
  const a = index.match(budgeted, NOW);
  const b = linearMatch(index.tabs(), budgeted, NOW, STALE);
  expect(a.kind).toBe(b.kind);
  if (a.kind === "match" && b.kind === "match") expect(a.match.tab.id).toBe(b.match.tab.id);
}

describe("CandidateIndex against a linear scan", () => {
  it.each([
    [1, 50, false],
    [2, 800, false],
    [3, 3000, false],
    [4, 300, true],
    [5, 2000, true],
  ])("seed %i, %i tabs (coarse values: %s) picks what the scan picks", (seed, n, coarse) => {
    const rng = createRng(seed);
    const index = new CandidateIndex({ staleAfterMs: STALE });
    for (let i = 0; i < n; i++) index.upsert(randomTab(rng, `tab-${i}`, coarse));
    for (let q = 0; q < 150; q++) expectSameChoice(index, randomRequest(rng, coarse));
  });

  it("still agrees after a stream of updates and removals", () => {
    const rng = createRng(42);
    const index = new CandidateIndex({ staleAfterMs: STALE });
    for (let i = 0; i < 1000; i++) index.upsert(randomTab(rng, `tab-${i}`, false));
    for (let step = 0; step < 3000; step++) {
      const id = `tab-${rng.int(1200)}`;
      const roll = rng.next();
      if (roll < 0.2) index.remove(id);
      else index.upsert(randomTab(rng, id, roll < 0.4));
      if (step % 10 === 0) expectSameChoice(index, randomRequest(rng, false));
    }
  });
});

describe("CandidateIndex edge cases", () => {
  const base = randomTab(createRng(7), "base", true);
  const req: MatchRequest = {
    clientLocation: { lat: 48.85, lon: 2.35 },
    model: "small",
    promptTokens: 100,
    maxTokens: 50,
    stream: true,
  };
  const at = (id: string, over: Partial<CandidateTab> = {}): CandidateTab => ({
    ...base,
    id,
    models: ["small"],
    loadedModels: ["small"],
    queue: { jobsAhead: 0, freeAtMs: 0 },
    lastSeenMs: NOW,
    ...over,
  });

  it("returns null when empty, for an unknown model, and after the last tab leaves", () => {
    const index = new CandidateIndex();
    expect(index.best(req, NOW)).toBeNull();
    expect(index.match(req, NOW)).toEqual({ kind: "no_tabs" });
    index.upsert(at("a"));
    expect(index.best({ ...req, model: "unknown" }, NOW)).toBeNull();
    expect(index.best(req, NOW)?.tab.id).toBe("a");
    expect(index.remove("a")).toBe(true);
    expect(index.remove("a")).toBe(false);
    expect(index.size).toBe(0);
    expect(index.best(req, NOW)).toBeNull();
  });

  it("breaks exact ties by the smaller tab id, whatever the insertion order", () => {
    for (const order of [
      ["b", "a", "c"],
      ["c", "b", "a"],
    ]) {
      const index = new CandidateIndex();
      for (const id of order) index.upsert(at(id));
      expect(index.best(req, NOW)?.tab.id).toBe("a");
    }
  });

  it("never chooses a stale tab and sweeps it out", () => {
    const index = new CandidateIndex({ staleAfterMs: 1000 });
    index.upsert(at("fresh", { location: { lat: -33.9, lon: 151.2 } }));
    index.upsert(at("stale", { location: req.clientLocation, lastSeenMs: NOW - 1001 }));
    expect(index.best(req, NOW)?.tab.id).toBe("fresh");
    expect(index.sweepStale(NOW)).toEqual(["stale"]);
    expect(index.size).toBe(1);
  });

  it("moves a tab between idle and busy when it is updated", () => {
    const index = new CandidateIndex({ staleAfterMs: 120_000 });
    index.upsert(at("near", { location: req.clientLocation }));
    index.upsert(at("far", { location: { lat: 40.7, lon: -74 } }));
    expect(index.best(req, NOW)?.tab.id).toBe("near");
    index.upsert(
      at("near", { location: req.clientLocation, queue: { jobsAhead: 1, freeAtMs: NOW + 60_000 } }),
    );
    expect(index.best(req, NOW)?.tab.id).toBe("far");
    expect(index.best(req, NOW + 60_000)?.tab.id).toBe("near");
  });

  it("prefers an idle tab unless a busy one is expected to be clearly faster", () => {
    const index = new CandidateIndex({ staleAfterMs: 120_000, idlePreference: 1.5 });
    // Idle but slow (prefill 100 ms for this prompt + 20 ms) vs busy but fast.
    index.upsert(at("idle", { prefillTokensPerSec: 1000, socketRttMs: 20 }));
    index.upsert(
      at("busy", {
        prefillTokensPerSec: 2000,
        socketRttMs: 20,
        queue: { jobsAhead: 1, freeAtMs: NOW + 10 },
      }),
    );
    const r = { ...req, clientLocation: base.location };
    expect(index.best(r, NOW)?.tab.id).toBe("busy"); // 20 + 10 + 50 = 80 < 120
    const chosen = index.match(r, NOW);
    expect(chosen.kind === "match" && chosen.match.tab.id).toBe("idle"); // 120 ≤ 1.5 × 80
    // A long prompt: idle 20 + 3000 ms vs busy 20 + 10 + 1500 ms — 3020 > 1.5 × 1530.
    const big = index.match({ ...r, promptTokens: 3000 }, NOW);
    expect(big.kind === "match" && big.match.tab.id).toBe("busy");
  });

  it("applies the latency budget in match()", () => {
    const index = new CandidateIndex();
    index.upsert(at("a", { location: req.clientLocation }));
    const est = index.best(req, NOW)!.estimate.ttftMs;
    expect(index.match({ ...req, latencyBudgetMs: Math.ceil(est) }, NOW).kind).toBe("match");
    expect(index.match({ ...req, latencyBudgetMs: Math.floor(est) - 1 }, NOW).kind).toBe(
      "over_budget",
    );
  });
});
