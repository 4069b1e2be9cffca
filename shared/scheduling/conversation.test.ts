import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { followUpAffinity, servedConversation } from "./conversation.js";
import { Scheduler } from "./scheduler.js";
import { candidateTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

const sha256 = async (text: string) => createHash("sha256").update(text).digest("hex");

describe("conversation keys", () => {
  it("a follow-up's history key is the key of what the tab served, and holds no text", async () => {
    const turn1 = [
      { role: "system" as const, content: "Be brief." },
      { role: "user" as const, content: "Why is the sky blue?" },
    ];
    const served = await servedConversation(turn1, "Rayleigh scattering.", sha256);
    const follow = await followUpAffinity(
      [
        ...turn1,
        { role: "assistant", content: "Rayleigh scattering." },
        { role: "user", content: "And sunsets?" },
      ],
      sha256,
    );
    expect(follow?.key).toBe(served.key);
    expect(follow?.cachedTokens).toBe(served.tokens);
    expect(served.key).toMatch(/^[0-9a-f]{64}$/);
    // Another answer, or a first turn, does not match.
    expect((await servedConversation(turn1, "Dust.", sha256)).key).not.toBe(served.key);
    expect(await followUpAffinity(turn1, sha256)).toBeNull();
  });
});

const here = { lat: 37.8, lon: -122.4 };
const tab = (id: string, lat: number) =>
  candidateTab(id, { location: { lat, lon: -122.4 }, prefill: 500, decode: 20 });
const req = (promptTokens: number) => matchRequest(here, promptTokens);
const open = OPEN;

describe("Scheduler affinity", () => {
  it("sends a follow-up to the holder, and protects the holder from other requests for a while", () => {
    // Queue mechanics apart from learning: these tabs have no timed job.
    const s = new Scheduler({ staleAfterMs: Infinity, holdMs: 60_000, queueBehindUntimed: true });
    s.put(tab("near", 37.8), open);
    s.put(tab("far", 47.6), open); // ~1,100 km: ~23 ms more round trip
    s.served("far", "conv", 1000, 0); // 1,000 tokens held: 2 s of prefill saved
    const follow = s.choose(req(1050), 1000, { key: "conv", cachedTokens: 1000 });
    expect(follow.kind === "match" && follow.match.tab.id).toBe("far");
    expect(follow.kind === "match" && follow.match.estimate.prefillMs).toBeCloseTo(100);
    const without = s.choose(req(1050), 1000);
    expect(without.kind === "match" && without.match.tab.id).toBe("near");
    // While near is busy, a new request goes to near's queue or elsewhere, not onto far's history.
    s.assigned("near", "j1", { promptTokens: 10, maxTokens: 10 }, 1000);
    const other = s.choose(req(50), 1000);
    expect(other.kind === "match" && other.match.tab.id).toBe("near");
    // Once the hold has expired, far is an ordinary idle tab again.
    const later = s.choose(req(50), 61_001);
    expect(later.kind === "match" && later.match.tab.id).toBe("far");
  });
});
