import { describe, expect, it } from "vitest";
import { objectiveMs, type CandidateTab, type MatchRequest } from "./score.js";
import {
  homeAcceptUpToMs,
  lineStartMs,
  MAX_OFFER_MODELS,
  mergeOffers,
  OFFER_PROMPT_TOKENS,
  offerEstimateMs,
  rankNeighbours,
  regionOffers,
  spillPlan,
  waitingMove,
  WAITING_MOVE_MARGIN,
  waitRegion,
  type ModelOffer,
} from "./spillover.js";

// Whole degrees: offers keep positions to whole degrees.
const FRANKFURT = { lat: 50, lon: 9 };
const WARSAW = { lat: 52, lon: 21 };
const NOW = 1_000_000;

function tab(
  id: string,
  o: Partial<CandidateTab> & { prefill: number; decode?: number; models?: string[] },
): CandidateTab {
  const models = o.models ?? ["m"];
  return {
    id,
    location: o.location ?? FRANKFURT,
    accessDelayMs: 0,
    socketRttMs: o.socketRttMs ?? 20,
    queue: o.queue ?? { jobsAhead: 0, freeAtMs: 0 },
    prefillTokensPerSec: o.prefill,
    decodeTokensPerSec: o.decode ?? 50,
    models,
    loadedModels: models,
    coldLoadMs: 0,
    lastSeenMs: 0,
  };
}

const req = (promptTokens: number, clientLocation = FRANKFURT): MatchRequest => ({
  clientLocation,
  model: "m",
  promptTokens,
  maxTokens: 100,
  stream: true,
});

/** One region offering one idle tab at `loc`. */
function offerOf(t: CandidateTab): ModelOffer {
  return regionOffers([t], [{ tab: t, freeAtMs: 0 }], 0, t.location, NOW).m!;
}

describe("a region's offer", () => {
  it("keeps the nearest tab for short prompts and the fastest for long ones, at most one per size", () => {
    const near = tab("near", { prefill: 2000, socketRttMs: 5 });
    const fast = tab("fast", { prefill: 5000, socketRttMs: 80 });
    const many = Array.from({ length: 50 }, (_, i) => tab(`t${i}`, { prefill: 100 + i }));
    const all = [near, fast, ...many];
    const offer = regionOffers(
      all,
      all.map((t) => ({ tab: t, freeAtMs: 0 })),
      0,
      FRANKFURT,
      NOW,
    ).m!;
    expect(offer.points.length).toBeLessThanOrEqual(OFFER_PROMPT_TOKENS.length);
    expect(offer.points.map((p) => p.prefillTps).sort((a, b) => a - b)).toEqual([2000, 5000]);
    // What a neighbour reads is what that region's scheduler would estimate for the tab.
    expect(offerEstimateMs(offer, req(50), NOW)).toBeCloseTo(objectiveMs(near, req(50), NOW), 0);
    expect(offerEstimateMs(offer, req(5000), NOW)).toBeCloseTo(
      objectiveMs(fast, req(5000), NOW),
      0,
    );
  });

  it("is bounded in models, and a region with no free tab still says when its line would start", () => {
    const models = Array.from({ length: 40 }, (_, i) => `m${i}`);
    const busy = tab("busy", { prefill: 1000, models });
    const offers = regionOffers([], [{ tab: busy, freeAtMs: NOW + 4000 }], 0, FRANKFURT, NOW);
    expect(Object.keys(offers)).toHaveLength(MAX_OFFER_MODELS);
    expect(offers.m0).toMatchObject({ points: [], lineStartMs: NOW + 4000 });
    expect(offers.m0?.lineTab?.prefillTps).toBe(1000);
  });

  it("offers the models ranked first when more are served: made-up names seen first do not push out the catalog's", () => {
    const junk = Array.from({ length: 20 }, (_, i) => `junk${i}`);
    const liars = Array.from({ length: 3 }, (_, i) =>
      tab(`liar${i}`, { prefill: 1000, models: junk }),
    );
    const honest = tab("honest", { prefill: 1000, models: ["catalog-model"] });
    const all = [...liars, honest].map((t) => ({ tab: t, freeAtMs: 0 }));
    const unranked = regionOffers([...liars, honest], all, 0, FRANKFURT, NOW);
    expect(unranked["catalog-model"]).toBeUndefined();
    const ranked = regionOffers([...liars, honest], all, 0, FRANKFURT, NOW, (m) =>
      m === "catalog-model" ? 1 : 0,
    );
    expect(Object.keys(ranked)).toHaveLength(MAX_OFFER_MODELS);
    expect(ranked["catalog-model"]?.points[0]?.prefillTps).toBe(1000);
  });

  it("a busy tab's offer includes its wait", () => {
    const t = tab("b", { prefill: 1000, queue: { jobsAhead: 1, freeAtMs: NOW + 3000 } });
    const offer = offerOf(t);
    expect(offerEstimateMs(offer, req(1000), NOW)).toBeCloseTo(20 + 3000 + 1000, 0);
    // Read a second later, the wait is a second shorter.
    expect(offerEstimateMs(offer, req(1000), NOW + 1000)).toBeCloseTo(20 + 2000 + 1000, 0);
  });

  it("the line starts a new request when the (waiting+1)-th tab frees up", () => {
    expect(lineStartMs([], 0, NOW)).toBe(Infinity);
    expect(lineStartMs([NOW + 500, 0, NOW + 200], 0, NOW)).toBe(NOW);
    expect(lineStartMs([NOW + 500, 0, NOW + 200], 2, NOW)).toBe(NOW + 500);
    // Past one round: each further round as long as the work held now (twice the mean left).
    expect(lineStartMs([NOW + 1000, NOW + 3000], 2, NOW)).toBe(NOW + 1000 + 4000);
  });

  it("a hint's shards merge: all their points, the soonest line", () => {
    const a = offerOf(tab("a", { prefill: 100 }));
    const b = { ...offerOf(tab("b", { prefill: 900 })), lineStartMs: NOW - 5 };
    const merged = mergeOffers([a, undefined, b])!;
    expect(merged.points).toHaveLength(2);
    expect(merged.lineStartMs).toBe(NOW - 5);
    expect(merged.lineTab?.prefillTps).toBe(900);
    expect(mergeOffers([undefined])).toBeUndefined();
  });
});

describe("spillover decisions", () => {
  const ranked = [
    { region: "eeur", ms: 300 },
    { region: "enam", ms: 500 },
    { region: "me", ms: 600 },
    { region: "apac", ms: 700 },
  ];

  it("ranks neighbours by the request's estimate there, nearest first on ties, none without an offer", () => {
    const slow = offerOf(tab("s", { prefill: 100, location: WARSAW }));
    const quick = offerOf(tab("q", { prefill: 4000, location: WARSAW }));
    const r = rankNeighbours(
      [
        { region: "a", offer: slow },
        { region: "b", offer: undefined },
        { region: "c", offer: quick },
        { region: "d", offer: quick },
      ],
      req(2000),
      NOW,
    );
    expect(r.map((n) => n.region)).toEqual(["c", "d", "a"]);
  });

  it("home takes the request unless the best neighbour beats it by the margin; home wins ties", () => {
    expect(homeAcceptUpToMs([], 1.1)).toBe(Infinity);
    expect(homeAcceptUpToMs(ranked, 1.1)).toBeCloseTo(330);
    expect(homeAcceptUpToMs(ranked, 1)).toBe(300);
    // Home offered exactly what the neighbour promises: no neighbour is asked.
    expect(spillPlan(ranked, 300, 1).tries).toEqual([]);
  });

  it("after home declines, asks at most three neighbours that beat its offer, each to beat it for real", () => {
    const plan = spillPlan(ranked, 650, 1.1);
    expect(plan.tries).toEqual(["eeur", "enam"]); // 600 × 1.1 is not below 650
    expect(plan.acceptUpToMs).toBeLessThan(650);
    expect(plan.acceptUpToMs).toBeGreaterThan(649.99);
    // Home had no tab at all: the best three, taking anything.
    expect(spillPlan(ranked, null, 1.1)).toEqual({
      tries: ["eeur", "enam", "me"],
      acceptUpToMs: Infinity,
    });
  });

  it("a request nobody can take waits in the line expected to start it soonest, home on ties", () => {
    const line = (startIn: number): ModelOffer => ({
      ...offerOf(tab("x", { prefill: 1000 })),
      lineStartMs: NOW + startIn,
    });
    const far = (startIn: number): ModelOffer => ({
      ...offerOf(tab("y", { prefill: 1000, location: WARSAW })),
      lineStartMs: NOW + startIn,
    });
    const at = req(500);
    expect(
      waitRegion(
        [
          { region: "weur", offer: line(8000) },
          { region: "eeur", offer: far(1000) },
        ],
        at,
        NOW,
      ),
    ).toBe("eeur");
    expect(
      waitRegion(
        [
          { region: "weur", offer: line(1000) },
          { region: "also", offer: line(1000) },
        ],
        at,
        NOW,
      ),
    ).toBe("weur");
    expect(waitRegion([{ region: "weur", offer: undefined }], at, NOW)).toBeNull();
  });
});

describe("moving a job already waiting in a line", () => {
  const ranked = [
    { region: "enam", ms: 400 },
    { region: "wnam", ms: 900 },
  ];
  it("moves to the best neighbour only when it beats the start here by the margin, asked to beat it for real", () => {
    expect(waitingMove(ranked, 400 * WAITING_MOVE_MARGIN + 1)).toEqual({
      region: "enam",
      acceptUpToMs: 400 * WAITING_MOVE_MARGIN + 1 - 0.001,
    });
    // Within the margin (the neighbour's figure is older and rounded): the job keeps its place.
    expect(waitingMove(ranked, 400 * WAITING_MOVE_MARGIN)).toBeNull();
    expect(waitingMove([], 10_000)).toBeNull();
  });
  it("with no estimate here at all, any neighbour with an offer will do", () => {
    expect(waitingMove(ranked, Number.POSITIVE_INFINITY)).toEqual({
      region: "enam",
      acceptUpToMs: Number.MAX_SAFE_INTEGER,
    });
  });
});
