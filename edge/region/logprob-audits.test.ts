import { describe, expect, it } from "vitest";
import { CONFIRMED_LOGPROBS_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { honest, serveForever, type ServeOptions } from "../../test/workerd/answering-tab.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { chat, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  AUDIT_ALL,
  NO_CANARIES,
  auditRows,
  bindingTab,
  standing,
  waitFor,
  withTrust,
} from "../../test/workerd/trust-helpers.js";

/**
 * Claimed logprobs confirmed by audits (audits.ts, shared/trust/logprob-agreement.ts; docs/trust.md
 * "Claimed logprobs"): every finished job is audited, and for a job that asked for logprobs the
 * verifier re-computes each token's entry as the model reports it; the coordinator compares the
 * serving tab's claimed entries with them. Scripted tabs write the deterministic engine's honest
 * text, so only the numbers differ between the tests; each test has its own model.
 */

const tabs = useTabs();
/** A tab speaking the protocol that re-computes entries (older verifiers never get such audits). */
const tab = (models: string[], opts: { keys?: CryptoKeyPair } = {}) =>
  tabs.tab(models, { ...opts, protocol: CONFIRMED_LOGPROBS_SINCE_PROTOCOL });
/** Honest re-scores with a GPU's spread and no flipped tokens, so honest verdicts cannot vary. */
const STEADY = { sd: 0.3, flipRate: 0, seed: 5 };
const serve = (t: ScriptedTab, o: ServeOptions = {}) =>
  serveForever(t, honest, { noise: STEADY, ...o });

/** Two requests at once asking for logprobs, so each of two idle tabs serves one. */
async function twoRequests(model: string, extra: object = {}): Promise<void> {
  const ask = { logprobs: true, top_logprobs: 2, temperature: 1, ...extra };
  const res = await Promise.all([chat(model, ask), chat(model, ask)]);
  for (const r of res) {
    const body = (await r.json()) as {
      choices: Array<{ message: { content: string }; logprobs: { content: unknown[] } | null }>;
    };
    expect(body.choices[0]!.message.content).toBe("You said: hi");
    expect(body.choices[0]!.logprobs?.content.length).toBe(3);
  }
}

describe("claimed logprobs confirmed by audits", () => {
  /**
   * A liar serving `model` with `logprobs` beside a binding verifier, asked until one audit's
   * accusation is held; then a second binding verifier, until the liar is quarantined.
   */
  async function heldThenQuarantined(model: string, logprobs: ServeOptions["logprobs"]) {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab([model]);
    // Trusted and signed: its re-computations bind (shared/trust/binding.ts) and can quarantine.
    const verifier = await bindingTab(tab, [model]);
    serve(liar, { logprobs });
    serve(verifier);
    const held = await waitFor(
      async () => {
        await twoRequests(model);
        return standing(liar.nodeId);
      },
      (s) => /waits for a second verifier/.test(s.reason ?? ""),
      30_000,
    );
    expect(held.reason).toMatch(/reported log-probabilities misstated.*waits for a second/);
    const confirmer = await bindingTab(tab, [model]);
    serve(confirmer);
    const quarantined = await waitFor(
      () => standing(liar.nodeId),
      (s) => s.state === "quarantined",
    );
    expect(quarantined.state).toBe("quarantined");
    expect(quarantined.reason).toMatch(/reported log-probabilities misstated/);
    return { held, quarantined, verifiers: [verifier, confirmer] };
  }

  it("a tab reporting made-up logprobs is quarantined once a second verifier confirms, though its text passes", async () => {
    const { held, quarantined, verifiers } = await heldThenQuarantined("lp-made-up", "made-up");
    expect(held.binding.misreportedLogprobs).toBeGreaterThan(0);
    // Its words are the model's: the plain re-scores found nothing; only the numbers were made up
    // (the alternatives' values are within the tolerance at their ranks — −0.5 where the model has
    // −0.05, −4 where it has −3.5 — so the misreports are the tokens claimed at −4 where the model
    // gives −0.05, and the made-up favourite " perhaps", not among the model's likeliest).
    const e = quarantined.evidence;
    expect(e.implausible).toBe(0);
    expect(e.logprobs).toBeGreaterThanOrEqual(6);
    expect(e.misreportedLogprobs).toBeGreaterThan(0);
    // The honest verifiers are not touched.
    for (const t of verifiers) {
      const fair = await standing(t.nodeId);
      expect(fair.state).not.toMatch(/quarantined|suspect/);
      expect(fair.faults).toBe(0);
    }
  }, 40_000);

  it("a tab naming made-up alternatives, with the model's values, is quarantined once a second verifier confirms", async () => {
    const { quarantined, verifiers } = await heldThenQuarantined("lp-renamed", "renamed");
    // Every value was the model's: only the alternative's text (" BUY NOW" where the model has
    // "alt1", at −3.5, three nats above the verifier's fifth-likeliest) gave it away.
    expect(quarantined.evidence.implausible).toBe(0);
    expect(quarantined.evidence.misreportedLogprobs).toBeGreaterThan(0);
    for (const t of verifiers)
      expect((await standing(t.nodeId)).state).not.toMatch(/quarantined|suspect/);
  }, 40_000);

  it("honest tabs' logprobs are compared and pass", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const a = await tab(["lp-honest"]);
    const b = await tab(["lp-honest"]);
    serve(a);
    serve(b);
    for (let i = 0; i < 4; i++) await twoRequests("lp-honest");
    // Eight answers, each audited by the other tab: three entries compared in each.
    const both = await waitFor(
      async () => [await standing(a.nodeId), await standing(b.nodeId)],
      (v) => (v[0]!.evidence.audits ?? 0) + (v[1]!.evidence.audits ?? 0) === 8,
    );
    expect((both[0]!.evidence.audits ?? 0) + (both[1]!.evidence.audits ?? 0)).toBe(8);
    expect((both[0]!.evidence.logprobs ?? 0) + (both[1]!.evidence.logprobs ?? 0)).toBe(24);
    for (const s of both) {
      expect(s.evidence.misreportedLogprobs ?? 0).toBe(0);
      expect(s.evidence.failedAudits).toBe(0);
      expect(s.state).not.toMatch(/quarantined|suspect/);
    }
  });

  it("greedy jobs' logprobs are left to the coherence checks, not compared", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    // Honest numbers: compared, they would be counted (the test above), and they are not.
    const subject = await tab(["lp-greedy"]);
    const verifier = await tab(["lp-greedy"]);
    serve(subject);
    serve(verifier);
    for (let i = 0; i < 3; i++) await twoRequests("lp-greedy", { temperature: 0 });
    // Six answers, each audited by the other tab (however the two were shared out).
    const both = await waitFor(
      async () => [await standing(subject.nodeId), await standing(verifier.nodeId)],
      (v) => (v[0]!.evidence.audits ?? 0) + (v[1]!.evidence.audits ?? 0) === 6,
    );
    expect((both[0]!.evidence.audits ?? 0) + (both[1]!.evidence.audits ?? 0)).toBe(6);
    for (const s of both) expect(s.evidence.logprobs ?? 0).toBe(0);
  });

  it("an audit with a claim to confirm waits for a verifier that re-computes entries", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await tab(["lp-old"]);
    const old = await tabs.tab(["lp-old"], { protocol: CONFIRMED_LOGPROBS_SINCE_PROTOCOL - 1 });
    serve(subject);
    serve(old);
    // Each tab serves one; the subject's answer waits (only a protocol-10 tab may re-compute it),
    // the old tab's answer (audited by the subject) is taken.
    await twoRequests("lp-old");
    const rows = await waitFor(
      () => auditRows("wnam", "lp-old"),
      (r) => r.length === 1,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.verifier).toBeNull();
    const s = await standing(subject.nodeId);
    expect(s.evidence.audits ?? 0).toBe(0);
    // A verifier that re-computes takes it.
    const fresh = await tab(["lp-old"]);
    serve(fresh);
    const judged = await waitFor(
      () => standing(subject.nodeId),
      (v) => (v.evidence.logprobs ?? 0) > 0,
    );
    expect(judged.evidence.logprobs).toBe(3);
    expect(judged.evidence.misreportedLogprobs ?? 0).toBe(0);
  });
});
