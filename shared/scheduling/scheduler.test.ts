import { describe, expect, it } from "vitest";
import { Scheduler } from "./scheduler.js";
import type { CandidateTab, MatchRequest } from "./score.js";

const here = { lat: 50, lon: 8 };

function tab(id: string, prefill: number, decode: number): CandidateTab {
  return {
    id,
    location: here,
    accessDelayMs: 0,
    socketRttMs: 20,
    queue: { jobsAhead: 0, freeAtMs: 0 },
    prefillTokensPerSec: prefill,
    decodeTokensPerSec: decode,
    models: ["m"],
    loadedModels: ["m"],
    coldLoadMs: 0,
    lastSeenMs: 0,
  };
}

const req = (promptTokens: number): MatchRequest => ({
  clientLocation: here,
  model: "m",
  promptTokens,
  maxTokens: 100,
  stream: true,
});
const open = { open: true, busy: false, canQueue: true };

describe("Scheduler", () => {
  it("queues a long prompt behind a fast busy tab rather than on a slow idle one", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
    s.put(tab("fast", 2000, 200), open); // a 100-token answer takes 0.5 s here
    s.put(tab("slow", 100, 10), open); // 3000 tokens of prompt take 30 s here
    expect(s.assigned("fast", "j1", { promptTokens: 100, maxTokens: 100 }, 0)).toBe("run");
    const r = s.choose(req(3000), 0);
    expect(r.kind === "match" && r.match.tab.id).toBe("fast");
    expect(r.kind === "match" && r.match.estimate.queueMs).toBeCloseTo(550);
    expect(s.assigned("fast", "j2", { promptTokens: 3000, maxTokens: 100 }, 0)).toBe("queue");
  });

  it("prefers the idle tab when waiting is not clearly faster, and never queues two deep", () => {
    const s = new Scheduler({ staleAfterMs: Infinity });
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
    const s = new Scheduler({ staleAfterMs: Infinity });
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
});
