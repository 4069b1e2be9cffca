import { describe, expect, it } from "vitest";
import { Scheduler } from "./scheduler.js";
import type { MatchRequest } from "./score.js";
import { candidateTab, chosenTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

/**
 * How long and from when a conversation's history is protected from other requests: from the
 * moment its turn starts running (a job queued behind it would evict it), and for as long as
 * replies are seen to come.
 */
const here = { lat: 37.8, lon: -122.4 };
const tab = (id: string, prefill: number) =>
  candidateTab(id, { location: here, prefill, decode: 100 });
const req = (promptTokens: number) => matchRequest(here, promptTokens);
const open = OPEN;
const chosen = chosenTab;

describe("a running chat turn's history is protected", () => {
  function fleet() {
    // Queue mechanics apart from learning: these tabs have no timed job.
    const s = new Scheduler({ staleAfterMs: Infinity, queueBehindUntimed: true });
    s.put(tab("fast", 2000), open);
    s.put(tab("slow", 400), open);
    return s;
  }
  // A long turn on the fast tab: 3,000 tokens of history, 1.5 s of prefill and 0.1 s of answer.
  const turn = { promptTokens: 3000, maxTokens: 10 };

  it("a new request does not queue behind it and evict the history it is building", () => {
    const s = fleet();
    s.assigned("fast", "turn", turn, 0, req(3000), { chat: true });
    // Behind the turn: 1.6 s wait + 0.5 s prefill; on the idle slow tab: 2.5 s. Queueing would
    // win, but the job would replace the conversation before its follow-up could come.
    expect(chosen(s, req(1000), 0)).toBe("slow");
  });

  it("a job that is not a conversation turn leaves the tab to queue behind, as before", () => {
    const s = fleet();
    s.assigned("fast", "plain", turn, 0, req(3000));
    expect(chosen(s, req(1000), 0)).toBe("fast");
  });

  it("a turn that leaves without an answer to hold (failed, cancelled) leaves nothing protected", () => {
    const s = fleet();
    s.assigned("fast", "turn", turn, 0, req(3000), { chat: true });
    s.left("fast", "turn", 100);
    expect(chosen(s, req(1000), 100)).toBe("fast");
  });

  it("a chat turn queued behind another job is protected once it starts", () => {
    const s = fleet();
    s.assigned("fast", "plain", { promptTokens: 100, maxTokens: 10 }, 0, req(100));
    s.assigned("fast", "turn", turn, 0, req(3000), { chat: true });
    s.left("fast", "plain", 150); // the turn starts now
    expect(chosen(s, req(1000), 150)).toBe("slow");
  });
});

describe("the protection lasts as long as replies are seen to come", () => {
  it("learns the reply gaps and stops protecting a history once its reply is overdue", () => {
    const s = new Scheduler({ staleAfterMs: Infinity, holdMs: 60_000 });
    s.put(tab("near", 2000), open);
    s.put(tab("far", 2000), open);
    s.put(tab("other", 2000), open);
    // 64 conversations on another tab whose follow-ups come 8–10 s after each answer.
    for (let i = 0; i < 64; i++) {
      const t = i * 20_000;
      s.served("other", `conv-${i}`, 100, t);
      s.choose(req(150), t + 8_000 + (i % 9) * 250, { key: `conv-${i}`, cachedTokens: 100 });
    }
    expect(s.holdWindowMs()).toBe(10_000);
    // Three alike idle tabs: a tie goes to the smallest id, "far", unless it is protected.
    const t0 = 2_000_000;
    s.served("far", "held", 2000, t0);
    expect(chosen(s, req(50), t0 + 5_000)).toBe("near");
    // Past every reply seen (10 s), the holder is an ordinary idle tab again (not after 60 s).
    expect(chosen(s, req(50), t0 + 10_500)).toBe("far");
  });

  it("without learning, the history stays protected for holdMs", () => {
    const s = new Scheduler({ staleAfterMs: Infinity, holdMs: 60_000, learnReplyPace: false });
    s.put(tab("far", 2000), open);
    s.put(tab("near", 2000), open);
    for (let i = 0; i < 64; i++) {
      s.served("near", `conv-${i}`, 100, i * 20_000);
      s.choose(req(150), i * 20_000 + 9_000, { key: `conv-${i}`, cachedTokens: 100 });
    }
    expect(s.holdWindowMs()).toBe(60_000);
  });
});

describe("a follow-up whose history is gone", () => {
  function fleet(missWeight?: number) {
    const s = new Scheduler({
      staleAfterMs: Infinity,
      ...(missWeight !== undefined ? { missWeight } : {}),
    });
    s.put(tab("held", 2000), open);
    s.put(tab("plain", 700), open);
    // Another conversation's 1,000-token history on the fast tab: protection 2 × 0.5 s.
    s.served("held", "their-conversation", 1000, 0);
    return s;
  }
  const lost = { key: "evicted-long-ago", cachedTokens: 2500 };
  const pick = (s: Scheduler, affinity?: typeof lost) => chosenTab(s, req(3000), 1000, affinity);

  it("does not take another conversation's protected history when a free tab is nearly as good", () => {
    // On the holder: 1.5 s prefill + 1 s protection (3 s weighed three times); free: 4.3 s.
    expect(pick(fleet(), lost)).toBe("plain");
  });

  it("while a first turn of the same size still does (the protection is worth less to it)", () => {
    expect(pick(fleet())).toBe("held");
    expect(pick(fleet(1), lost)).toBe("held");
  });
});
