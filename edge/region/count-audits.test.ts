import { describe, expect, it } from "vitest";
import { utf8ByteLength } from "../../shared/protocol/frames.js";
import { honest, serveForever, wordCount, type Claim } from "../../test/workerd/answering-tab.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  standing,
  waitFor,
  AUDIT_ALL,
  NO_CANARIES,
  bindingTab,
  withTrust,
} from "../../test/workerd/trust-helpers.js";

/**
 * Count audits (audits.ts, shared/trust/token-counts.ts; docs/trust.md): every finished job is
 * audited, and the verifier's count of the answer's tokens is compared with the completion tokens
 * the answering tab reported. Scripted tabs write the deterministic engine's honest text and
 * re-score without noise, so only the counts differ between the tests; each test has its own model.
 */

const { tab } = useTabs();

/** One token per word (the deterministic engine's tokens) and the stop token, as WebLLM counts. */
const realCount: Claim = (text) => wordCount(text) + 1;
/** One token per UTF-8 byte: the most the coordinator's bound lets through (usage-bounds.ts). */
const perByte: Claim = (text) => utf8ByteLength(text);

/**
 * Serve jobs with honest text and `claim`'s count; re-score audits without noise and count their
 * answers — or send no count (`"none"`), or always this one (a number).
 */
const serve = (t: ScriptedTab, claim: Claim, counts: "real" | "none" | number = "real") =>
  serveForever(t, honest, { noise: { sd: 0, flipRate: 0, seed: 5 }, claim, counts });

/** Two requests at once, so each of the two tabs serves one (and audits the other's). */
async function twoRequests(model: string): Promise<void> {
  const res = await Promise.all([chat(model, { stream: true }), chat(model, { stream: true })]);
  for (const r of res) expect((await streamText(r)).text).toBe("You said: hi");
}

describe("count audits", () => {
  it("a tab claiming one token per byte of honest text is found inflated and quarantined once a second verifier confirms", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["ct-bytes"]);
    // Trusted and signed: its counts are binding (shared/trust/binding.ts), so they can quarantine.
    const honestTab = await bindingTab(tab, ["ct-bytes"]);
    const liarServed = serve(liar, perByte);
    serve(honestTab, realCount);
    // Its counts bind until one would decide the quarantine: that one is held for a second verifier
    // (accusations.ts). None is a fault on one verifier's word.
    const held = await waitFor(
      async () => {
        await twoRequests("ct-bytes");
        return standing(liar.nodeId);
      },
      (s) => /waits for a second verifier/.test(s.reason ?? ""),
      30_000,
    );
    expect(held.state).toBe("suspect");
    expect(held.reason).toMatch(/completion-token counts inflated.*waits for a second verifier/);
    expect(held.evidence.inflatedCounts).toBeGreaterThan(held.binding.inflatedCounts);
    expect(held.binding.inflatedCounts).toBeGreaterThan(0);
    expect(held.faults).toBe(0);

    // A second trusted verifier re-counts the held answers: confirmed, quarantined.
    const confirmer = await bindingTab(tab, ["ct-bytes"]);
    serve(confirmer, realCount);
    const quarantined = await waitFor(
      () => standing(liar.nodeId),
      (s) => s.state === "quarantined",
    );
    expect(quarantined.state).toBe("quarantined");
    expect(quarantined.reason).toMatch(/completion-token counts inflated/);
    // Every compared count was inflated ("You said: hi": 12 bytes claimed, 3 tokens counted); its
    // text itself passed the re-scoring.
    const e = quarantined.evidence;
    expect(e.counts).toBeGreaterThanOrEqual(7);
    expect(e.inflatedCounts).toBe(e.counts);
    expect(e.implausible).toBe(0);
    // One fault per confirmed answer — counted inflated by two verifiers — and none for the counts
    // one verifier bound (wait for every held one to be settled: none waits once the liar is
    // quarantined).
    const settled = await waitFor(
      async () => {
        const [l, a, b] = [liar, honestTab, confirmer].map((t) => standing(t.nodeId));
        return { liar: await l!, confirmed: (await a!).confirmed + (await b!).confirmed };
      },
      (v) => v.liar.evidence.inflatedCounts === v.liar.binding.inflatedCounts,
    );
    expect(settled.confirmed).toBeGreaterThanOrEqual(1);
    const inflated = settled.liar.evidence.inflatedCounts;
    expect(inflated).toBeGreaterThan(settled.confirmed);
    expect(settled.liar.faults).toBe(settled.confirmed);
    expect(liarServed.jobs).toBeGreaterThanOrEqual(
      settled.liar.evidence.counts - settled.confirmed,
    );
    // The honest tabs it audited meanwhile are not touched by the liar's counts or their own.
    for (const t of [honestTab, confirmer]) {
      const fair = await standing(t.nodeId);
      expect(fair.state).not.toMatch(/quarantined|suspect/);
      expect(fair.evidence.inflatedCounts ?? 0).toBe(0);
      expect(fair.faults).toBe(0);
    }
  }, 40_000);

  it("honest tabs reporting their real count and the stop token pass, with no fault", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const a = await tab(["ct-honest"]);
    const b = await tab(["ct-honest"]);
    serve(a, realCount);
    serve(b, realCount);
    for (let i = 0; i < 4; i++) await twoRequests("ct-honest");
    const both = await waitFor(
      async () => [await standing(a.nodeId), await standing(b.nodeId)],
      (v) => (v[0]!.evidence.counts ?? 0) + (v[1]!.evidence.counts ?? 0) >= 7,
    );
    expect(
      (both[0]!.evidence.counts ?? 0) + (both[1]!.evidence.counts ?? 0),
    ).toBeGreaterThanOrEqual(7);
    for (const s of both) {
      expect(s.evidence.inflatedCounts ?? 0).toBe(0);
      expect(s.evidence.failedAudits).toBe(0);
      expect(s.faults).toBe(0);
      expect(s.state).not.toMatch(/quarantined|suspect/);
    }
  });

  it("a verifier that sends no count (an older page) leaves the count unjudged", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["ct-old"]);
    const old = await tab(["ct-old"]);
    serve(liar, perByte);
    serve(old, realCount, "none");
    for (let i = 0; i < 4; i++) await twoRequests("ct-old");
    const s = await waitFor(
      () => standing(liar.nodeId),
      (v) => v.evidence.audits >= 3,
    );
    expect(s.evidence.audits).toBeGreaterThanOrEqual(3);
    expect(s.evidence.counts ?? 0).toBe(0);
    expect(s.evidence.failedAudits).toBe(0);
    expect(s.faults).toBe(0);
    expect(s.state).not.toMatch(/quarantined|suspect/);
  });

  it("a verifier whose count contradicts its own scores is at fault, and the count is not judged", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const a = await tab(["ct-framer"]);
    const framer = await tab(["ct-framer"]);
    serve(a, realCount);
    // It scores the answer's 3 tokens but says the answer is 1 token: a low count that would frame.
    serve(framer, realCount, 1);
    for (let i = 0; i < 3; i++) await twoRequests("ct-framer");
    const [subject, verifier] = await waitFor(
      async () => [await standing(a.nodeId), await standing(framer.nodeId)],
      (v) => v[0]!.evidence.audits >= 2,
    );
    expect(subject!.evidence.audits).toBeGreaterThanOrEqual(2);
    expect(subject!.evidence.counts ?? 0).toBe(0);
    expect(subject!.faults).toBe(0);
    // One fault per audit it answered (read a moment after the subject's evidence: maybe more).
    expect(verifier!.faults).toBeGreaterThanOrEqual(subject!.evidence.audits);
  });
});
