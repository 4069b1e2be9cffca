import { describe, expect, it } from "vitest";
import { chooseHedge } from "./hedging.js";
import { Scheduler } from "./scheduler.js";
import { candidateTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

const here = { lat: 50, lon: 8 };

const tab = (id: string, prefill: number, decode: number) =>
  candidateTab(id, { location: here, prefill, decode });

const req = (promptTokens: number) => matchRequest(here, promptTokens);
const open = OPEN;
/** Queue mechanics apart from learning: tabs here have no timed job (see the untimed test). */
const queueing = { staleAfterMs: Infinity, queueBehindUntimed: true };

describe("Scheduler", () => {
  it("queues a long prompt behind a fast busy tab rather than on a slow idle one", () => {
    const s = new Scheduler(queueing);
    s.put(tab("fast", 2000, 200), open); // a 100-token answer takes 0.5 s here
    s.put(tab("slow", 100, 10), open); // 3000 tokens of prompt take 30 s here
    expect(s.assigned("fast", "j1", { promptTokens: 100, maxTokens: 100 }, 0)).toBe("run");
    const r = s.choose(req(3000), 0);
    expect(r.kind === "match" && r.match.tab.id).toBe("fast");
    expect(r.kind === "match" && r.match.estimate.queueMs).toBeCloseTo(550);
    expect(s.assigned("fast", "j2", { promptTokens: 3000, maxTokens: 100 }, 0)).toBe("queue");
  });

  it("prefers the idle tab when waiting is not clearly faster, and never queues two deep", () => {
    const s = new Scheduler(queueing);
    s.put(tab("fast", 2000, 200), open);
    s.put(tab("slow", 1000, 100), open);
    s.assigned("fast", "j1", { promptTokens: 100, maxTokens: 100 }, 0);
    const short = s.choose(req(50), 0);
    expect(short.kind === "match" && short.match.tab.id).toBe("slow");
    s.assigned("fast", "j2", { promptTokens: 100, maxTokens: 100 }, 0);
    s.assigned("slow", "j3", { promptTokens: 100, maxTokens: 100 }, 0);
    // fast holds one job queued: only slow (busy, room for one) is offered.
    const next = s.choose(req(3000), 0);
    expect(next.kind === "match" && next.match.tab.id).toBe("slow");
  });

  it("starts the queued job when the running one leaves, and offers a tab that cannot queue only when idle", () => {
    const s = new Scheduler(queueing);
    s.put(tab("a", 1000, 100), open);
    s.assigned("a", "j1", { promptTokens: 0, maxTokens: 100 }, 0);
    s.assigned("a", "j2", { promptTokens: 0, maxTokens: 100 }, 0);
    expect(s.left("a", "j1", 400)).toBe("j2");
    expect(s.startedAt("a", "j2")).toBe(400);
    expect(s.freeAtMs("a")).toBe(1400);
    s.put(tab("a", 1000, 100), { ...open, canQueue: false });
    expect(s.choose(req(10), 400).kind).toBe("no_tabs");
    s.left("a", "j2", 900);
    expect(s.choose(req(10), 900).kind).toBe("match");
    // Busy with work it was not given here (an audit): not offered.
    s.put(tab("a", 1000, 100), { ...open, busy: true });
    expect(s.choose(req(10), 900).kind).toBe("no_tabs");
  });

  it("moves a job queued behind a busy tab to a tab that frees up first, when it starts sooner there", () => {
    const s = new Scheduler(queueing);
    s.put(tab("a", 2000, 100), open);
    s.put(tab("b", 2000, 100), open);
    s.put(tab("slow", 100, 10), open);
    // Both fast tabs busy with 1 s answers (at most); a long prompt queues behind one of them.
    s.assigned("a", "ja", { promptTokens: 0, maxTokens: 100 }, 0);
    s.assigned("b", "jb", { promptTokens: 0, maxTokens: 100 }, 100);
    const r = s.choose(req(3000), 200);
    expect(r.kind === "match" && r.match.tab.id).toBe("a"); // expected free at 1000, b at 1100
    expect(s.assigned("a", "q", { promptTokens: 3000, maxTokens: 100 }, 200, req(3000))).toBe(
      "queue",
    );
    // The slow tab is idle but would prefill 3000 tokens for 30 s: nothing to take.
    expect(s.queuedToTake("slow", 300)).toBeNull();
    // b's answer stops early, while a's goes on: b starts the queued job now, not after a.
    s.left("b", "jb", 400);
    expect(s.queuedToTake("b", 400)).toEqual({ jobId: "q", fromTabId: "a" });
    s.left("a", "q", 400);
    expect(s.assigned("b", "q", { promptTokens: 3000, maxTokens: 100 }, 400)).toBe("run");
    expect(s.jobIds("a")).toEqual(["ja"]);
    // Nothing is queued anywhere now.
    s.left("b", "q", 2000);
    expect(s.queuedToTake("b", 2000)).toBeNull();
  });

  it("does not queue behind a tab no job has been timed on: its finish is only its benchmark's word", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("fast", 2000, 200), open);
    s.put(tab("slow", 100, 10), open);
    s.assigned("fast", "j1", { promptTokens: 100, maxTokens: 100 }, 0);
    const r = s.choose(req(3000), 0);
    expect(r.kind === "match" && r.match.tab.id).toBe("slow");
  });

  it("stops treating a busy tab as about to free up once its job runs past the estimate", () => {
    const s = new Scheduler(queueing);
    s.put(tab("fast", 2000, 200), open);
    s.put(tab("mid", 1000, 100), open);
    s.assigned("fast", "j1", { promptTokens: 100, maxTokens: 100 }, 0); // expected to end at 550
    // At 5 s the job is still running: the tab is slower than believed, not free in a moment.
    const r = s.choose(req(1000), 5000);
    expect(r.kind === "match" && r.match.tab.id).toBe("mid");
    expect(s.freeAtMs("fast")).toBeGreaterThan(5000);
  });

  it("trusts the first timed job over the benchmark", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("a", 1000, 100), open);
    s.observe("a", {
      clientLocation: here,
      timedAt: "tab",
      promptTokens: 1000,
      ttftMs: 2020,
      prefillMs: 2000, // half the benchmark's speed
      completionTokens: 101,
      decodeMs: 2000,
    });
    expect(s.corrected("a")!.prefillTokensPerSec).toBeCloseTo(500, 0);
    expect(s.corrected("a")!.decodeTokensPerSec).toBeCloseTo(50, 0);
  });

  it("races a second idle tab only for a budgeted request on a tab with no timed job", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("new", 1000, 100), open);
    s.put(tab("known", 900, 100), open);
    s.put(tab("slow", 200, 20), open);
    // One job timed on "known", at exactly its benchmark's speeds.
    s.observe("known", {
      clientLocation: here,
      timedAt: "tab",
      promptTokens: 900,
      ttftMs: 1020,
      prefillMs: 1000,
      completionTokens: 101,
      decodeMs: 1000,
    });
    const budgeted = { ...req(500), latencyBudgetMs: 10_000 };
    const first = s.choose(budgeted, 0);
    expect(first.kind === "match" && first.match.tab.id).toBe("new");
    if (first.kind !== "match") return;
    expect(chooseHedge(s, budgeted, 0, first.match)?.tab.id).toBe("known");
    expect(chooseHedge(s, req(500), 0, first.match)).toBeNull(); // no budget: no hedge
    s.observe("new", {
      clientLocation: here,
      timedAt: "tab",
      promptTokens: 500,
      ttftMs: 520,
      prefillMs: 500,
    });
    const again = s.choose(budgeted, 0);
    if (again.kind !== "match") throw new Error("no match");
    expect(chooseHedge(s, budgeted, 0, again.match)).toBeNull(); // timed once: trusted
    // The chosen tab is still offered afterwards.
    expect(s.index.get("new")).toBeDefined();
  });
});
