import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS } from "../../shared/models/catalog.js";
import { REGION_CENTRES } from "../../shared/geo/regions.js";
import { TabMatcher, seedSpeeds } from "./tab-matcher.js";
import { tabRecord } from "../../test/workerd/tab-record.js";
import { chat, inJobRegion, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * Speed lies (docs/trust.md): what the coordinator observes replaces what a tab claims, while it
 * is on probation and after it is trusted, and across a signed identity's reconnects.
 */
const model = DEFAULT_MODELS[0]!.model_id;

function liar(tabId: string) {
  return tabRecord(tabId, model, {
    // The most a "high" tab may claim after the plausible cap: far beyond what it decodes.
    gpu: {
      class: "high",
      profile: null,
      benchmark: { matmulGflops: 100_000, bandwidthGBs: 1200, durationMs: 300 },
    },
  });
}

/** One finished job decoded at `tps` tokens per second. */
function slowJob(m: TabMatcher, tabId: string, tps: number): void {
  m.observe(tabId, {
    clientLocation: REGION_CENTRES.wnam,
    promptTokens: 20,
    ttftMs: 400,
    completionTokens: 41,
    decodeMs: (40 / tps) * 1000,
  });
}

describe("observed speed replaces a claimed one", () => {
  const claimed = seedSpeeds(liar("x"), model).decode;

  it("on probation and after it: trusting the tab does not bring its claim back", () => {
    const m = new TabMatcher("wnam", 60_000);
    const tab = liar("k_probation_then_trusted");
    m.sync(tab, false, false);
    for (let i = 0; i < 10; i++) slowJob(m, tab.tabId, 3);
    const observed = m.decodeSpeed(tab.tabId);
    expect(observed).toBeLessThan(4);
    m.sync(tab, false, true); // it finished its probation jobs: now trusted
    expect(m.decodeSpeed(tab.tabId)).toBeCloseTo(observed, 6);
    expect(claimed).toBeGreaterThan(100 * observed);
  });

  it("a trusted tab's claim is only its start: its first finished job replaces it", () => {
    const m = new TabMatcher("wnam", 60_000);
    const tab = liar("k_trusted");
    m.sync(tab, false, true);
    expect(m.decodeSpeed(tab.tabId)).toBe(claimed);
    slowJob(m, tab.tabId, 3);
    m.sync(tab, false, true);
    expect(m.decodeSpeed(tab.tabId)).toBeLessThan(10);
  });

  it("a signed identity keeps its observed speed across a reconnect; an anonymous one does not", () => {
    const m = new TabMatcher("wnam", 60_000);
    for (const id of ["k_signed", "a_anonymous"]) {
      const tab = liar(id);
      m.sync(tab, false, false);
      for (let i = 0; i < 10; i++) slowJob(m, id, 3);
      m.remove(id);
      m.sync(liar(id), false, true);
    }
    expect(m.decodeSpeed("k_signed")).toBeLessThan(4);
    // The anonymous one is a new tab again: believed as any tab never timed is (its claim, scaled
    // by the fleet's learned factors when the fleet runs far from its claims: fleetPrior).
    m.sync(liar("a_never_seen"), false, true);
    expect(m.decodeSpeed("a_anonymous")).toBe(m.decodeSpeed("a_never_seen"));
    expect(m.decodeSpeed("a_anonymous")).toBeGreaterThan(100 * m.decodeSpeed("k_signed"));
  });

  it("a job done as fast as a tab likes moves its learned speed only so far", () => {
    const m = new TabMatcher("wnam", 60_000);
    const tab = liar("k_dumper");
    m.sync(tab, false, true);
    // Its whole answer in one frame and job.done 1 ms later, ten times over: ~2,000,000 tokens/s.
    for (let i = 0; i < 10; i++)
      m.observe(tab.tabId, {
        clientLocation: REGION_CENTRES.wnam,
        promptTokens: 20,
        ttftMs: 400,
        completionTokens: 2000,
        decodeMs: 1,
      });
    m.sync(tab, false, true);
    // Learned against the no-claim base (8 tokens/s) by a factor held to at most 20
    // (shared/scheduling/speed-tracker.ts): 160 tokens/s, under what the status figures allow.
    expect(m.decodeSpeed(tab.tabId)).toBeCloseTo(160, 6);
  });
});

describe("a tab's claimed prefill time", () => {
  const tabs = useTabs();
  const prompt = "word ".repeat(80);

  /** One job on its own tab whose first token comes a second after its accept; returns the tab's learned prefill speed. */
  async function timedWithClaim(model: string, prefillMs: number): Promise<number | null> {
    const t = await tabs.tab([model]);
    const res = chat(model, { messages: [{ role: "user", content: prompt }], stream: true });
    const job = await t.nextJob();
    t.accept(job);
    await new Promise((r) => setTimeout(r, 1000)); // the prefill, as the region sees it
    t.delta(job, 0, "answer");
    t.send({
      type: "job.done",
      jobId: job.id,
      finishReason: "stop",
      usage: { prompt_tokens: 100, completion_tokens: 1, total_tokens: 101 },
      prefillMs,
    });
    expect((await streamText(await res)).done).toBe(true);
    return inJobRegion(job.id, (p) => p.matcher.observedPrefillSpeed(t.nodeId));
  }

  it("is held to what the region measured from its accept to its first token", async () => {
    const honest = await timedWithClaim("sc-prefill-honest", 1000);
    // A near-zero claim would put the whole second on the network, and the tab's prefill at ×20.
    const liar = await timedWithClaim("sc-prefill-liar", 1);
    expect(honest).not.toBeNull();
    expect(liar!).toBeLessThan(1.5 * honest!);
  }, 10_000);
});
