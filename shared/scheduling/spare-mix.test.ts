import { describe, expect, it } from "vitest";
import { Scheduler } from "./scheduler.js";
import type { SchedulerOptions } from "./scheduler-options.js";
import { candidateTab, chosenTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

const here = { lat: 50, lon: 8 };
const tab = (id: string, prefill: number, decode: number) =>
  candidateTab(id, { location: here, prefill, decode });
const req = (promptTokens: number) => matchRequest(here, promptTokens);
/** Sparing on, with the defaults for which prompts are short (no prompt here reaches 1,000). */
const options: SchedulerOptions = {
  staleAfterMs: Infinity,
  queueBehindUntimed: true,
  spareFast: true,
  spareFastFromPrefill: 1000,
  spareIdleShare: Infinity,
};

/**
 * A fast tab and a mid-range one, after `seen` requests of 200–800 tokens (a mix like bench:geo's
 * hedging world).
 */
function fleet(extra: SchedulerOptions = {}, seen = 300): Scheduler {
  const s = new Scheduler({ ...options, ...extra });
  s.put(tab("fast", 2000, 60), OPEN);
  s.put(tab("mid", 800, 25), OPEN);
  for (let i = 0; i < seen; i++) s.choose(req(200 + ((i * 37) % 601)), 0);
  return s;
}

const chosen = (s: Scheduler, promptTokens: number) => chosenTab(s, req(promptTokens));

describe("Scheduler: sparing the fast tabs for the mix's own long prompts", () => {
  it("with no prompt of 1,000 tokens, a prompt in the mix's lower half leaves the fast tab to the upper half", () => {
    // 300 tokens: 150 ms of prefill on fast, 375 ms on mid — 225 ms more, within 300 ms.
    expect(chosen(fleet(), 300)).toBe("mid");
    // Without the relative rule nothing is spared in this mix (the rule before).
    expect(chosen(fleet({ spareMixQuantile: 0 }), 300)).toBe("fast");
  });

  it("keeps the mix's long prompts, and short ones that would lose too much, on the fast tab", () => {
    // 700 tokens: above the recent median (~500), so it is one the fast tab is kept for.
    expect(chosen(fleet(), 700)).toBe("fast");
    // 450 tokens: below the median, but 225 ms on fast and 562 ms on mid — 337 ms more, over 300.
    expect(chosen(fleet(), 450)).toBe("fast");
    expect(chosen(fleet({ spareMixWithinMs: 400 }), 450)).toBe("mid");
  });

  it("does not judge the mix before it has seen enough prompts", () => {
    expect(chosen(fleet({}, 200), 300)).toBe("fast");
  });

  it("prompts all of one size are none of them short", () => {
    const s = fleet({}, 0);
    for (let i = 0; i < 100; i++) expect(chosen(s, 300)).toBe("fast");
  });

  it("uses the absolute rule and its allowance while long prompts come", () => {
    const s = fleet({ spareWithinMs: 100 });
    for (let i = 0; i < 40; i++) s.choose(req(3000), 0);
    // 300 tokens would lose 225 ms on mid: within the relative rule's 300 ms, not the 100 ms
    // allowed while prompts of 1,000+ tokens come.
    expect(chosen(s, 300)).toBe("fast");
    // 900 tokens is short by the absolute rule (under 1,000) but loses 675 ms: stays.
    expect(chosen(s, 900)).toBe("fast");
  });
});
