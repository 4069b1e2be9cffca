import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS } from "../../shared/models/catalog.js";
import { REGION_CENTRES } from "../../shared/geo/regions.js";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { TabMatcher } from "./tab-matcher.js";
import { tabRecord } from "../../test/workerd/tab-record.js";

/**
 * The Region's matcher protects a chat turn's history while the turn runs (placement.ts passes
 * `{ chat: true }` for a chat job the tab writes whole): a new request is not queued behind it
 * when an idle tab is nearly as good, as it is behind any other job (docs/routing.md,
 * "Conversation affinity").
 */
const model = DEFAULT_MODELS[0]!.model_id;

const tab = (tabId: string) => tabRecord(tabId, model, { protocol: QUEUE_SINCE_PROTOCOL });

/** A finished job that shows the tab prefilling `prefill` tokens/s and decoding 100/s. */
function timed(m: TabMatcher, tabId: string, prefill: number): void {
  m.observe(tabId, {
    clientLocation: REGION_CENTRES.wnam,
    timedAt: "tab",
    promptTokens: 1000,
    ttftMs: (1000 / prefill) * 1000 + 20,
    prefillMs: (1000 / prefill) * 1000,
    completionTokens: 101,
    decodeMs: 1000,
  });
}

const req = {
  clientLocation: REGION_CENTRES.wnam,
  model,
  promptTokens: 1000,
  maxTokens: 10,
  stream: true,
};

function region(chatTurn: boolean) {
  const m = new TabMatcher("wnam", 60_000);
  const fast = tab("t_fast");
  const slow = tab("t_slow");
  for (const t of [fast, slow]) m.sync(t, false);
  timed(m, fast.tabId, 2000);
  timed(m, slow.tabId, 400);
  // The fast tab runs a long turn: 3,000 tokens of prompt (1.5 s), a short answer.
  const now = Date.now();
  m.assigned(fast.tabId, "turn", { promptTokens: 3000, maxTokens: 10 }, now, req, {
    chat: chatTurn,
  });
  m.sync({ ...fast, jobId: "turn", state: "busy" }, false);
  const result = m.match(req, now);
  return result.kind === "match" ? result.match.tab.id : null;
}

describe("a running chat turn in the Region's matcher", () => {
  it("is not queued behind when an idle tab is nearly as good", () => {
    expect(region(true)).toBe("t_slow");
  });

  it("while any other running job is (waiting beats the slow tab)", () => {
    expect(region(false)).toBe("t_fast");
  });
});
