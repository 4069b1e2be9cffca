import { describe, expect, it } from "vitest";
import { chooseHedge, DEFAULT_HEDGE_POLICY } from "./hedging.js";
import type { Match } from "./linear-scan.js";
import { Scheduler } from "./scheduler.js";
import type { MatchRequest } from "./score.js";
import { candidateTab, OPEN } from "../../test/support/candidate-tab.js";

const here = { lat: 50, lon: 8 };
const open = OPEN;

const tab = (id: string, prefill: number) =>
  candidateTab(id, { location: here, prefill, decode: 20 });

const budgeted: MatchRequest = {
  clientLocation: here,
  model: "m",
  promptTokens: 500,
  maxTokens: 100,
  stream: true,
  latencyBudgetMs: 60_000,
};

/** A job timed on the tab: its first token after `prefillMs` of prefill (plus its socket). */
function timed(s: Scheduler, id: string, prefillMs: number): void {
  s.observe(id, {
    clientLocation: here,
    timedAt: "tab",
    promptTokens: 500,
    ttftMs: 20 + prefillMs,
    prefillMs,
  });
}

function chosen(s: Scheduler, req: MatchRequest): Match {
  const r = s.choose(req, 0);
  if (r.kind !== "match") throw new Error(r.kind);
  return r.match;
}

describe("chooseHedge", () => {
  it("races a budgeted request on an untimed tab with the best timed idle tab, and only then", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("new", 1000), open); // believed 0.5 s for the prompt: chosen
    s.put(tab("known-slow", 500), open);
    s.put(tab("known-ok", 500), open);
    s.put(tab("untimed-other", 900), open);
    timed(s, "known-slow", 900);
    timed(s, "known-ok", 700);
    const first = chosen(s, budgeted);
    expect(first.tab.id).toBe("new");
    expect(chooseHedge(s, budgeted, 0, first)?.tab.id).toBe("known-ok");
    // No budget: no race. A timed chosen tab: no race.
    const { latencyBudgetMs: _, ...plain } = budgeted;
    expect(chooseHedge(s, plain, 0, chosen(s, plain))).toBeNull();
    timed(s, "new", 450);
    expect(chooseHedge(s, budgeted, 0, chosen(s, budgeted))).toBeNull();
  });

  it("with untimedSpeedShare, ranks an untimed second by its bad case against the timed ones", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("new", 2000), open); // 250 ms of prefill believed: chosen
    s.put(tab("untimed-fast", 1800), open); // 278 ms believed, 463 ms at 0.6 of its benchmark
    s.put(tab("known", 500), open);
    timed(s, "known", 500); // within twice the chosen tab's estimate
    const first = chosen(s, budgeted);
    expect(first.tab.id).toBe("new");
    const policy = { ...DEFAULT_HEDGE_POLICY, untimedSpeedShare: 0.6 };
    expect(chooseHedge(s, budgeted, 0, first, policy)?.tab.id).toBe("untimed-fast");
    // At a quarter of its benchmark the untimed tab could take 1.1 s: the timed one is surer.
    const wary = { ...DEFAULT_HEDGE_POLICY, untimedSpeedShare: 0.25 };
    expect(chooseHedge(s, budgeted, 0, first, wary)?.tab.id).toBe("known");
    expect(chooseHedge(s, budgeted, 0, first)?.tab.id).toBe("known"); // default: timed only
  });
});
