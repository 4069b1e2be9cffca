import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { NO_NOISE } from "../../test/support/deterministic-engine.js";
import { honest, serveForever, spam } from "../../test/workerd/answering-tab.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { CoordinatorMessageSchema, parseFrame } from "../../shared/protocol/node-messages.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  AUDIT_ALL,
  NO_CANARIES,
  bindingTab,
  gone,
  waitFor,
  withTrust,
  reputationOf,
} from "../../test/workerd/trust-helpers.js";
import { Accusations, type Accusation } from "./accusations.js";
import type { TabRecord } from "./tab-registry.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * A quarantine never rests on one verifier's word (accusations.ts; docs/trust.md "Binding
 * accusations"): a binding verifier's audit that would decide a quarantine is held, the subject
 * suspect at most, until a second binding verifier re-checks the same answer. Scripted tabs
 * answer like the deterministic engine and re-score without noise; a framer scores every token
 * it audits implausible while it answers its own jobs honestly.
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");

function isBinding(tabId: string): Promise<boolean> {
  return runInDurableObject(stub(), (obj) =>
    (obj as unknown as { parts: RegionParts }).parts.reputation.isBinding(tabId),
  );
}

/** The audits of `model` that carry an accusation: who accused, and who holds the audit now. */
function accused(model: string): Promise<Array<{ accuser: string; verifier: string | null }>> {
  return runInDurableObject(stub(), (_obj, state) =>
    state.storage.sql
      .exec<{ accusation: string; verifier: string | null }>(
        `SELECT accusation, verifier FROM audits WHERE model = ? AND accusation IS NOT NULL`,
        model,
      )
      .toArray()
      .map((r) => ({
        accuser: (JSON.parse(r.accusation) as Accusation).verifier,
        verifier: r.verifier,
      })),
  );
}

/**
 * A request whose honest answer ("You said: …", 13 tokens) is long enough that one audit calling
 * every token implausible decides a quarantine (6 tokens do: docs/trust.md).
 */
const LONG = {
  stream: true,
  messages: [{ role: "user", content: "tell me about the quiet grey cat on the warm roof" }],
};
const FRAMING = { noise: NO_NOISE, frames: true };

describe("accusations wait for a second verifier", () => {
  it("a signed framer gets an honest tab suspect, never quarantined; contradicted twice, its word no longer binds and it verifies no more", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "acc-framed";
    const subject = await tab([model], { keys: await newKeyPair() });
    const subjectServed = serveForever(subject, honest, NO_NOISE);
    const answer = async () =>
      expect((await streamText(await chat(model, LONG))).text).toMatch(/^You said: tell me/);
    await answer();
    // A binding framer: signed and trusted by its jobs (bindingTab). One audit of it was enough
    // to quarantine before.
    const framerKeys = await newKeyPair();
    let framer = await bindingTab(tab, [model], { keys: framerKeys });
    serveForever(framer, honest, FRAMING);
    const held = await waitFor(
      () => reputationOf(subject.nodeId),
      (v) => v.failedAudits >= 1,
    );
    expect(held).toMatchObject({ state: "suspect", failedAudits: 1, bindingFailedChecks: 0 });
    expect(held.reason).toMatch(/re-scored tokens implausible.*waits for a second verifier/);
    // The audit went back carrying the accusation, for anyone but the framer.
    expect(await accused(model)).toEqual([{ accuser: framer.nodeId, verifier: null }]);

    // A second binding verifier re-checks the same answer and finds it right: contradicted.
    const first = await bindingTab(tab, [model]);
    const firstServed = serveForever(first, honest, NO_NOISE);
    const once = await waitFor(
      () => reputationOf(framer.nodeId),
      (v) => v.accusations.contradicted >= 1,
    );
    expect(once.accusations).toEqual({ confirmed: 0, contradicted: 1 });
    expect(firstServed.audits).toBe(1);
    // One contradiction alone does not strip a verifier of its word.
    expect(await isBinding(framer.nodeId)).toBe(true);
    // The contradicted accusation is taken back out: the honest tab is judged on the second
    // verifier's audit alone, no longer suspect (audited at the suspect rate, no verifier).
    const after = await reputationOf(subject.nodeId);
    expect(after).toMatchObject({ audits: 1, failedAudits: 0, bindingFailedChecks: 0 });
    expect(after.state).not.toBe("suspect");
    expect(after.reason).toBeNull();
    expect(await accused(model)).toEqual([]);

    // Another answer, accused by the framer again (alone with the subject), contradicted again.
    await gone(first);
    await gone(framer);
    await answer();
    framer = await tab([model], { keys: framerKeys });
    serveForever(framer, honest, FRAMING);
    await waitFor(
      () => accused(model),
      (rows) => rows.length === 1,
    );
    expect(await accused(model)).toEqual([{ accuser: framer.nodeId, verifier: null }]);
    const second = await bindingTab(tab, [model]);
    serveForever(second, honest, NO_NOISE);
    const twice = await waitFor(
      () => reputationOf(framer.nodeId),
      (v) => v.accusations.contradicted >= 2,
    );
    expect(twice.accusations).toEqual({ confirmed: 0, contradicted: 2 });
    expect(await isBinding(framer.nodeId)).toBe(false);
    const framed = await reputationOf(subject.nodeId);
    expect(framed).toMatchObject({ audits: 2, failedAudits: 0, bindingFailedChecks: 0 });
    expect(framed.state).not.toBe("suspect");

    // Not picked as a verifier any more: an audit of the next answer waits while it is idle (it
    // joined first, so it would have been sent it), then goes to an honest tab that joins.
    await gone(second);
    await gone(framer);
    await answer();
    framer = await tab([model], { keys: framerKeys });
    const framerServed = serveForever(framer, honest, FRAMING);
    const last = await bindingTab(tab, [model]);
    const lastServed = serveForever(last, honest, NO_NOISE);
    await waitFor(
      async () => lastServed.audits,
      (n) => n >= 1,
    );
    expect(lastServed.audits).toBe(1);
    expect(framerServed.audits).toBe(0);
    // The honest tab served every request and was never quarantined.
    expect(subjectServed.jobs).toBe(3);
    expect((await reputationOf(subject.nodeId)).state).not.toBe("quarantined");
  }, 30_000);

  it("a spamming tab's accusation is held until a second binding verifier confirms it: then it is quarantined", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "acc-confirmed";
    const liar = await tab([model]);
    serveForever(liar, spam);
    await streamText(await chat(model, { stream: true }));
    const accuser = await bindingTab(tab, [model]);
    serveForever(accuser, honest, NO_NOISE);
    const held = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.failedAudits >= 1,
    );
    expect(held).toMatchObject({ state: "suspect", failedAudits: 1, bindingFailedChecks: 0 });
    expect(held.reason).toMatch(/re-scored tokens implausible.*waits for a second verifier/);
    // Suspect, not quarantined: it may still serve (nothing else is asked of it here).
    expect(await accused(model)).toEqual([{ accuser: accuser.nodeId, verifier: null }]);

    const confirmer = await bindingTab(tab, [model]);
    const confirmerServed = serveForever(confirmer, honest, NO_NOISE);
    const view = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.state === "quarantined",
    );
    expect(view).toMatchObject({ state: "quarantined", audits: 2, failedAudits: 2 });
    expect(view.bindingFailedChecks).toBeGreaterThan(0);
    expect(view.reason).toMatch(/re-scored tokens implausible/);
    expect(view.reason).not.toMatch(/waits/);
    expect(confirmerServed.audits).toBe(1);
    expect((await reputationOf(accuser.nodeId)).accusations).toEqual({
      confirmed: 1,
      contradicted: 0,
    });
    expect(await accused(model)).toEqual([]);
  });
});

describe("a discredited framer's accusations still held", () => {
  // Review finding: once a framer is discredited (contradicted twice), an accusation of its still
  // waiting is void and the next verifier's result is "heard as a first word" (accusations.ts) —
  // but the void accusation's evidence, recorded as not binding when it was held, is never taken
  // back out, as a contradicted one's is. So a framer that accuses three honest tabs at once and is
  // contradicted on two leaves the third suspect for good (audited at the suspect rate, no
  // verifier), though a second binding verifier found nothing wrong in the same answer.
  it("an honest tab whose framer lost its word is judged as if the void accusation had not been made", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const views = await runInDurableObject(stub(), async (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      const acc = new Accusations(parts.reputation, parts.trust);
      const who = (id: string) => ({ tabId: id, publicId: `p_${id}` }) as TabRecord;
      const framer = who("n_framer_void");
      const honestVerifier = who("n_second_void");
      const framed = (x: string) => `n_honest_void_${x}`;
      const audit = (x: string, accusation: string | null = null) => ({
        id: `aud_void_${x}`,
        subject: framed(x),
        subject_public: `p_${framed(x)}`,
        accusation,
      });
      // 13 tokens, every one called implausible: decisive alone (6 would do).
      const framing = { audits: 1, failedAudits: 1, tokens: 13, implausible: 13 };
      const passing = { audits: 1, failedAudits: 0, tokens: 13, implausible: 0 };
      const held: Record<string, string | null> = {};
      for (const x of ["a", "b", "c"])
        held[x] = await acc.hear(audit(x), { verifier: framer, evidence: framing, what: "frame" });
      // Two of its accusations are contradicted: it loses its binding word.
      for (const x of ["a", "b"])
        await acc.hear(audit(x, held[x]!), {
          verifier: honestVerifier,
          evidence: passing,
          what: "re-check",
        });
      const discredited = parts.reputation.isDiscredited(framer.tabId);
      // The third is re-checked by the same honest verifier, finding nothing wrong: void.
      await acc.hear(audit("c", held.c!), {
        verifier: honestVerifier,
        evidence: passing,
        what: "re-check",
      });
      const { state: b, failedAudits: fb } = parts.reputation.view(framed("b"));
      const { state: c, failedAudits: fc } = parts.reputation.view(framed("c"));
      return { discredited, b: { state: b, failedAudits: fb }, c: { state: c, failedAudits: fc } };
    });
    expect(views.discredited).toBe(true);
    // The contradicted one is cleared…
    expect(views.b.failedAudits).toBe(0);
    expect(views.b.state).not.toBe("suspect");
    // …and so should the void one be: the same answer, re-checked and found right.
    expect(views.c).toEqual(views.b);
  });
});

describe("an accused audit refused by its second verifier", () => {
  // Review finding: a verifier that answers an audit with `error` hands it back without being put
  // in its `missed` list (audits.ts onResult: handBack(row.id)), and its time to live starts
  // afresh. For an accused audit that lets one binding identity — the liar's own second key pair,
  // connected first — be picked for it again at once, every time it answers, forever: the liar
  // stays suspect and serving, never quarantined, the accusation never lapses, the refuser is never
  // contradicted or discredited, and an honest second verifier that is idle beside it is never sent
  // the audit. (Contradicting costs a colluding confirmer its word after 2; refusing costs nothing.)
  it("goes to another binding verifier, and the liar is quarantined", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "acc-refused";
    const liar = await tab([model]);
    serveForever(liar, spam);
    await streamText(await chat(model, { stream: true }));
    const accuser = await bindingTab(tab, [model]);
    serveForever(accuser, honest, NO_NOISE);
    await waitFor(
      () => accused(model),
      (rows) => rows.length === 1,
    );
    // The refuser: binding, idle, and answering every audit it is sent with an error.
    const refuser = await bindingTab(tab, [model]);
    const refused = refuseAudits(refuser);
    await waitFor(
      async () => refused.n,
      (n) => n >= 1,
    );
    // An honest binding verifier, idle beside it.
    const confirmer = await bindingTab(tab, [model]);
    const confirmed = serveForever(confirmer, honest, NO_NOISE);
    const view = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.state === "quarantined",
      3000,
    );
    // Refused once, it should go to the honest verifier, which confirms it.
    expect({
      refusals: refused.n,
      confirmerAudits: confirmed.audits,
      state: view.state,
    }).toEqual({
      refusals: 1,
      confirmerAudits: 1,
      state: "quarantined",
    });
  });
});

/** Answer every audit `t` is sent with an error (it "could not score") after 100 ms, counting them. */
function refuseAudits(t: ScriptedTab): { n: number } {
  const seen = { n: 0 };
  t.ws.addEventListener("message", (e) => {
    const parsed = parseFrame(CoordinatorMessageSchema, e.data as string);
    if (!parsed.ok || parsed.msg.type !== "audit.assign") return;
    seen.n++;
    const { auditId } = parsed.msg;
    // After a pause, as an engine failing would: well within the socket's frame budget.
    setTimeout(
      () =>
        t.send({
          type: "audit.result",
          auditId,
          tokenLogprobs: [],
          stopLogprob: null,
          error: { code: "engine_error", message: "could not score" },
        }),
      100,
    );
  });
  return seen;
}

describe("an accusation held across an operator's release", () => {
  // Review finding: Reputation.contradict takes the held accusation's evidence out of the
  // subject's evidence *now*. After an operator's release in between, that evidence was moved to
  // `carried` and is no longer there; what is there is new evidence, recorded after the release —
  // and the subtraction takes that out instead (counts floored at 0). So a framer's accusation
  // contradicted after a release erases real evidence against the tab gathered since.
  it("a contradiction after a release takes out the accusation, not the evidence gathered since", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const view = await runInDurableObject(stub(), async (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      const acc = new Accusations(parts.reputation, parts.trust);
      const who = (id: string) => ({ tabId: id, publicId: `p_${id}` }) as TabRecord;
      const subject = "n_released_subject";
      const audit = (accusation: string | null = null) => ({
        id: "aud_released",
        subject,
        subject_public: `p_${subject}`,
        accusation,
      });
      const held = await acc.hear(audit(), {
        verifier: who("n_released_framer"),
        evidence: { audits: 1, failedAudits: 1, tokens: 13, implausible: 13 },
        what: "frame",
      });
      // Quarantined meanwhile (another cause), and released by an operator.
      await parts.trust.quarantine(subject, "operator test");
      await parts.trust.release(subject);
      // Since the release: an audit with 5 of 13 tokens implausible (not binding, not decisive).
      await parts.reputation.record(
        subject,
        `p_${subject}`,
        { audits: 1, failedAudits: 1, tokens: 13, implausible: 5 },
        { what: "audit since the release", verifier: "a_anon", binding: false },
      );
      const before = parts.reputation.view(subject);
      // Now a second binding verifier finds the framed answer right: contradicted.
      await acc.hear(audit(held), {
        verifier: who("n_released_second"),
        evidence: { audits: 1, failedAudits: 0, tokens: 13, implausible: 0 },
        what: "re-check",
      });
      return { before, after: parts.reputation.view(subject) };
    });
    expect(view.before.state).toBe("suspect");
    // The audit since the release still failed: it stays in the evidence, the tab suspect.
    expect(view.after.state).toBe("suspect");
  });
});
