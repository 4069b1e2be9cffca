import { describe, expect, it } from "vitest";
import { Scheduler } from "./scheduler.js";
import type { SchedulerOptions } from "./scheduler-options.js";
import { candidateTab, chosenTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

const here = { lat: 50, lon: 8 };
const tab = (id: string, prefill: number, decode: number) =>
  candidateTab(id, { location: here, prefill, decode });
const req = (promptTokens: number) => matchRequest(here, promptTokens);
const base = { staleAfterMs: Infinity, queueBehindUntimed: true, spareFast: false };
/** Sparing whatever the share of fast tabs idle and of long prompts (the last tests cover those). */
const sparing: SchedulerOptions = {
  ...base,
  spareFast: true,
  spareFastFromPrefill: 1000,
  spareBelowTokens: 1000,
  spareWithinMs: 500,
  spareIdleShare: Infinity,
  spareLongShare: 0,
};

function fleet(options: SchedulerOptions): Scheduler {
  const s = new Scheduler(options);
  s.put(tab("fast", 2000, 60), OPEN);
  s.put(tab("mid", 500, 25), OPEN);
  return s;
}

const chosen = (s: Scheduler, promptTokens: number) => chosenTab(s, req(promptTokens));

describe("Scheduler: sparing the fast tabs for long prompts", () => {
  it("sends a short prompt to a slower tab when that costs it little, keeping the fast tab free", () => {
    // 200 tokens: 100 ms of prefill on fast, 400 ms on mid — 300 ms more, within 500 ms.
    expect(chosen(fleet(base), 200)).toBe("fast");
    expect(chosen(fleet(sparing), 200)).toBe("mid");
  });

  it("keeps long prompts, and short ones the slower tab would delay too much, on the fast tab", () => {
    // 3000 tokens: a long prompt is what the fast tab is kept for.
    expect(chosen(fleet(sparing), 3000)).toBe("fast");
    // 900 tokens: 450 ms on fast, 1800 ms on mid — 1350 ms more, beyond 500 ms.
    expect(chosen(fleet(sparing), 900)).toBe("fast");
  });

  it("a fast tab turning idle takes a short job queued elsewhere only if it gains more than the allowance", () => {
    const s = new Scheduler(sparing);
    s.put(tab("fast", 2000, 60), OPEN);
    s.put(tab("mid2", 500, 25), OPEN);
    s.assigned("fast", "busy", { promptTokens: 0, maxTokens: 60 }, 0); // 1 s
    s.assigned("mid2", "other", { promptTokens: 0, maxTokens: 25 }, 0); // 1 s
    // A short job queued behind mid2, expected to start at 1000 ms there.
    expect(s.assigned("mid2", "short", { promptTokens: 200, maxTokens: 100 }, 0, req(200))).toBe(
      "queue",
    );
    // fast frees at 900 ms: starting there saves 100 ms of wait + 300 ms of prefill, under 500.
    s.left("fast", "busy", 900, { finished: true });
    expect(s.queuedToTake("fast", 900)).toBeNull();
    // Without sparing the same fast tab takes it.
    const plain = new Scheduler(base);
    plain.put(tab("fast", 2000, 60), OPEN);
    plain.put(tab("mid2", 500, 25), OPEN);
    plain.assigned("fast", "busy", { promptTokens: 0, maxTokens: 60 }, 0);
    plain.assigned("mid2", "other", { promptTokens: 0, maxTokens: 25 }, 0);
    plain.assigned("mid2", "short", { promptTokens: 200, maxTokens: 100 }, 0, req(200));
    plain.left("fast", "busy", 900, { finished: true });
    expect(plain.queuedToTake("fast", 900)).toEqual({ jobId: "short", fromTabId: "mid2" });
  });

  it("a fast tab turning idle still takes a long job queued elsewhere", () => {
    const s = new Scheduler(sparing);
    s.put(tab("fast", 2000, 60), OPEN);
    s.put(tab("mid", 500, 25), OPEN);
    s.assigned("fast", "busy", { promptTokens: 0, maxTokens: 60 }, 0);
    s.assigned("mid", "other", { promptTokens: 0, maxTokens: 25 }, 0);
    s.assigned("mid", "long", { promptTokens: 3000, maxTokens: 100 }, 0, req(3000));
    s.left("fast", "busy", 900, { finished: true });
    expect(s.queuedToTake("fast", 900)).toEqual({ jobId: "long", fromTabId: "mid" });
  });

  it("spares only while few fast tabs are idle", () => {
    const s = new Scheduler({ ...sparing, spareIdleShare: 0.5 });
    s.put(tab("fast1", 2000, 60), OPEN);
    s.put(tab("fast2", 2000, 60), OPEN);
    s.put(tab("mid", 500, 25), OPEN);
    // Both fast tabs idle: nothing to spare them for.
    expect(chosen(s, 200)).toBe("fast1");
    // One of two busy: half idle, not fewer than half — still not spared.
    s.assigned("fast2", "j", { promptTokens: 0, maxTokens: 6 }, 0); // ends at 100 ms
    expect(chosen(s, 200)).toBe("fast1");
    // Both busy, for 100 ms: queueing there (200 ms) still beats mid (400 ms of prefill), by less
    // than the allowance — the short prompt takes the idle mid-range tab.
    s.assigned("fast1", "k", { promptTokens: 0, maxTokens: 6 }, 0);
    expect(chosen(s, 200)).toBe("mid");
  });

  it("spares only while long prompts come that need the fast tabs", () => {
    const s = fleet({ ...sparing, spareLongShare: 0.05 });
    // Only short prompts so far: nothing to keep the fast tab for.
    for (let i = 0; i < 50; i++) expect(chosen(s, 200)).toBe("fast");
    // Long prompts arrive (each is still the fast tab's): from then on short ones are sent on.
    for (let i = 0; i < 20; i++) expect(chosen(s, 3000)).toBe("fast");
    expect(chosen(s, 200)).toBe("mid");
  });
});
