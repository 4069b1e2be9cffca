import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { scoreClaim } from "../../test/support/deterministic-engine.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  AUDIT_ALL,
  NO_CANARIES,
  auditRows,
  bindingTab,
  within,
  withTrust,
} from "../../test/workerd/trust-helpers.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * A verifier holds one audit at a time, until it answers that audit, leaves, or the audit's
 * deadline passes (audits.ts; docs/trust.md). Before, an audit sent to a verifier that never
 * answered stayed with it for good, and the verifier took the next audit by saying it was idle:
 * one silent tab swallowed every audit of its partner's answers.
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");
const SPAM = "Buy cheap watches at our store today, best prices guaranteed";

/** `n` answers of spam from `liar`, the only tab of its model: their audits wait for a verifier. */
async function spamAnswers(liar: ScriptedTab, model: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = chat(model);
    liar.serve(await liar.nextJob(), [SPAM], { completion_tokens: 10 });
    expect((await res).status).toBe(200);
  }
  await expect.poll(async () => (await auditRows("wnam", model)).length).toBe(n);
}

function view(tabId: string) {
  return runInDurableObject(stub(), (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    return {
      reputation: parts.reputation.view(tabId).state,
      faults: parts.trust.view(tabId).faults,
      state: parts.tabs.get(tabId)?.state,
    };
  });
}

/** Re-score every audit this tab is sent, as an honest verifier. */
function verifyHonestly(t: ScriptedTab): void {
  t.listen((msg) => {
    if (msg.type === "audit.assign")
      t.send({ type: "audit.result", auditId: msg.auditId, ...scoreClaim(msg) });
  });
}

/**
 * One verifier's verdict quarantines nobody (accusations.ts): once the liar is suspect, its
 * accusation waiting, a second honest, trusted verifier confirms it and the liar is quarantined.
 */
async function confirmed(liar: ScriptedTab, model: string): Promise<ScriptedTab> {
  await expect.poll(async () => (await view(liar.nodeId)).reputation).toBe("suspect");
  const confirmer = await bindingTab(tab, [model]);
  verifyHonestly(confirmer);
  await expect.poll(async () => (await view(liar.nodeId)).reputation).toBe("quarantined");
  return confirmer;
}

describe("audits out with a verifier", () => {
  it("a verifier holds one audit at a time: saying it is idle or answering another audit id frees nothing", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["ad-hold"]);
    await spamAnswers(liar, "ad-hold", 2);
    const [first, second] = await auditRows("wnam", "ad-hold");

    const sink = await tab(["ad-hold"]);
    const taken = await within(sink.next("audit.assign"), 5_000, "an audit reaching the sink");
    expect(taken.auditId).toBe(first!.id);
    // It answers for an audit it was never sent, then says it is idle; never the audit it holds.
    sink.send({
      type: "audit.result",
      auditId: "aud_made_up",
      tokenLogprobs: [],
      stopLogprob: null,
    });
    sink.send({ type: "status", state: "idle", models: ["ad-hold"] });
    await expect.poll(async () => (await view(sink.nodeId)).state).toBe("idle");

    // Both frames were handled: the sink still holds the first audit and was not given the second.
    expect(await auditRows("wnam", "ad-hold")).toEqual([
      { id: first!.id, verifier: sink.nodeId },
      { id: second!.id, verifier: null },
    ]);

    // An honest, trusted verifier gets the second at once; its verdict (confirmed by a second
    // verifier) quarantines the liar.
    const honest = await bindingTab(tab, ["ad-hold"]);
    const given = await within(honest.next("audit.assign"), 5_000, "the second audit reaching it");
    expect(given.auditId).toBe(second!.id);
    honest.send({ type: "audit.result", auditId: given.auditId, ...scoreClaim(given) });
    await confirmed(liar, "ad-hold");
    expect(sink.received.filter((m) => m.type === "audit.assign")).toEqual([]);
  });

  it("an audit not answered by its deadline goes to another verifier, and the silent one is at fault", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES, auditDeadlineMs: 300 });
    const liar = await tab(["ad-late"]);
    await spamAnswers(liar, "ad-late", 1);
    const [audit] = await auditRows("wnam", "ad-late");

    const silent = await tab(["ad-late"]);
    const held = await within(silent.next("audit.assign"), 5_000, "the audit reaching a verifier");
    expect(held.auditId).toBe(audit!.id);
    // It never answers. An honest verifier arrives while the audit is still out (or after the
    // deadline: either way it is the one that gets it).
    const honest = await bindingTab(tab, ["ad-late"]);
    const resent = await within(
      honest.next("audit.assign"),
      5_000,
      "the audit reaching another verifier after its deadline",
    );
    expect(resent.auditId).toBe(audit!.id);
    honest.send({ type: "audit.result", auditId: resent.auditId, ...scoreClaim(resent) });
    await confirmed(liar, "ad-late");

    // The silent verifier is at fault, and is not sent the audit again.
    expect((await view(silent.nodeId)).faults).toBe(1);
    expect(silent.received.filter((m) => m.type === "audit.assign")).toEqual([]);
    expect(await auditRows("wnam", "ad-late")).toEqual([]);
  }, 15_000);

  it("an honest verifier keeps its audit", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["ad-honest"]);
    await spamAnswers(liar, "ad-honest", 1);
    const honest = await bindingTab(tab, ["ad-honest"]);
    verifyHonestly(honest);
    const confirmer = await confirmed(liar, "ad-honest");
    expect((await view(honest.nodeId)).faults).toBe(0);
    expect((await view(confirmer.nodeId)).faults).toBe(0);
    expect(await auditRows("wnam", "ad-honest")).toEqual([]);
  });
});
