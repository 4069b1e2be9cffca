import { SELF, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { NO_NOISE, scoreClaim } from "../../test/support/deterministic-engine.js";
import { honest, serveForever, spam, type Answerer } from "../../test/workerd/answering-tab.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  waitFor,
  AUDIT_ALL,
  CANARIES_ONLY,
  NO_CANARIES,
  auditRows,
  bindingTab,
  gone,
  pastProbation,
  withTrust,
  reputationOf,
} from "../../test/workerd/trust-helpers.js";
import type { RegionParts } from "./region-parts.js";
import type { TabListing } from "./region-views.js";
import { regionStub } from "./region-stub.js";

/**
 * Verification in the Region object with scripted tabs (docs/trust.md): honest tabs answer like
 * the deterministic engine and re-score with its scoring function; lying tabs answer otherwise.
 * Verification is off for the other edge tests (TRUST=off); each test here turns it on with
 * sampling rates of 1, so every finished job is audited (or every idle moment is a canary).
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");

/** Canary answers the Region holds: all candidates, and those two identities agreed on. */
async function canaryAnswers(): Promise<{ candidates: number; confirmed: number }> {
  return runInDurableObject(stub(), (_obj, state) =>
    state.storage.sql
      .exec<{ candidates: number; confirmed: number }>(
        `SELECT COUNT(*) AS candidates, COALESCE(SUM(confirmed), 0) AS confirmed FROM canary_answers`,
      )
      .one(),
  );
}

const smaller: Answerer = (job) => `I think ${honest(job).split(" ").slice(2).join(" ")} maybe`;

describe("verification of answers", () => {
  it("a tab answering with spam is audited by another tab, quarantined, and gets no more jobs", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["tr-spam"]);
    const liarServed = serveForever(liar, spam);
    const res = await chat("tr-spam", { stream: true });
    // Signed identities trusted by their finished jobs: their word is binding
    // (shared/trust/binding.ts), and the second confirms the first's accusation (accusations.ts).
    const verifier = await bindingTab(tab, ["tr-spam"]);
    const verifierServed = serveForever(verifier, honest);
    const confirmer = await bindingTab(tab, ["tr-spam"]);
    const confirmerServed = serveForever(confirmer, honest);
    await streamText(res); // the spam reached this client: it was served before any audit
    const view = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.state === "quarantined",
    );
    expect(view.state).toBe("quarantined");
    expect(view.reason).toMatch(/re-scored tokens implausible/);
    // One audit of its answer, re-checked by a second verifier: two failed audits.
    expect(verifierServed.audits).toBe(1);
    expect(confirmerServed.audits).toBe(1);
    // The tab itself is told, with when and why (the contributor page shows it in plain words).
    const told = await waitFor(
      async () => liar.received.filter((m) => m.type === "trust"),
      (notices) => notices.some((n) => n.state === "quarantined"),
    );
    expect(told.at(-1)).toMatchObject({
      type: "trust",
      state: "quarantined",
      audits: { passed: 0, failed: 2 },
      reason: expect.stringMatching(/re-scored tokens implausible/),
      quarantinedAt: expect.any(Number),
    });
    // The verifier's own notice says nothing of quarantine.
    expect(verifier.received.filter((m) => m.type === "trust").map((m) => m.state)).not.toContain(
      "quarantined",
    );
    // The verdict is TabTrust's quarantine: GET /v1/nodes shows it, with the audit counts.
    const nodes = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
      data: TabListing[];
    };
    const states = nodes.data.filter((n) => n.models.includes("tr-spam")).map((n) => n.trust);
    expect(states.filter((t) => t.state === "quarantined")).toMatchObject([
      { audits: { passed: 0, failed: 2 }, reason: expect.stringMatching(/re-scored tokens/) },
    ]);
    // Later clients are served by the honest tab only.
    const before = liarServed.jobs;
    for (let i = 0; i < 4; i++) {
      const out = await streamText(await chat("tr-spam", { stream: true }));
      expect(out.text).toBe("You said: hi");
    }
    expect(liarServed.jobs).toBe(before);
    expect((await reputationOf(verifier.nodeId)).state).not.toBe("quarantined");
    expect((await reputationOf(confirmer.nodeId)).state).not.toBe("quarantined");
  });

  it("anonymous verifiers scoring an honest tab's answers implausible get it suspect at most, never quarantined", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await tab(["tr-framed"]);
    const subjectServed = serveForever(subject, honest);
    // Three honest answers, whose audits wait for a verifier.
    for (let i = 0; i < 3; i++)
      expect((await streamText(await chat("tr-framed", { stream: true }))).text).toBe(
        "You said: hi",
      );
    // Framers: every token of every answer they audit is "implausible" (−20). One such audit was
    // enough to quarantine before (6 implausible tokens: docs/trust.md).
    const frame = (t: ScriptedTab, most = Infinity) => {
      let answered = 0;
      t.listen((msg) => {
        // Past `most`, it holds the audit unanswered (it goes back when the tab leaves).
        if (msg.type !== "audit.assign" || answered++ >= most) return;
        const r = scoreClaim(msg, { sd: 0, flipRate: 0, seed: 5 });
        t.send({
          type: "audit.result",
          auditId: msg.auditId,
          ...r,
          tokenLogprobs: r.tokenLogprobs.map(() => -20),
          stopLogprob: r.stopLogprob === null ? null : -20,
        });
      });
    };
    // Anonymous identities (one per connection, free) answer the audits: two on one socket …
    const anonymous = await tab(["tr-framed"]);
    frame(anonymous, 2);
    await waitFor(
      () => reputationOf(subject.nodeId),
      (v) => v.failedAudits >= 2,
    );
    anonymous.close();
    // … and the third on another.
    const another = await tab(["tr-framed"]);
    frame(another);
    const view = await waitFor(
      () => reputationOf(subject.nodeId),
      (v) => v.failedAudits >= 3,
    );
    expect(view).toMatchObject({ state: "suspect", failedAudits: 3, bindingFailedChecks: 0 });
    expect(view.reason).toMatch(/re-scored tokens implausible.*waits for a signed verifier/);
    // Not quarantined: it still serves clients (and earns), and is audited more often.
    expect(await streamText(await chat("tr-framed", { stream: true }))).toMatchObject({
      text: "You said: hi",
    });
    expect(subjectServed.jobs).toBe(4);
    const trustState = await runInDurableObject(stub(), (obj) =>
      (obj as unknown as { parts: RegionParts }).parts.trust.state(subject.nodeId),
    );
    expect(trustState).not.toBe("quarantined");
  });

  it("signed verifiers' failing audits quarantine a spamming tab; an anonymous one's earlier word does not count against it", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["tr-bound"]);
    serveForever(liar, spam);
    await streamText(await chat("tr-bound", { stream: true }));
    // An anonymous verifier: its failing audit makes the liar suspect only.
    const anonymous = await tab(["tr-bound"]);
    serveForever(anonymous, honest);
    const suspect = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.audits >= 1,
    );
    expect(suspect).toMatchObject({ state: "suspect", failedAudits: 1, bindingFailedChecks: 0 });
    anonymous.close();
    // Another answer, audited by a signed verifier and confirmed by a second: binding, so the liar
    // is quarantined.
    await streamText(await chat("tr-bound", { stream: true }));
    const signed = await tab(["tr-bound"], { keys: await newKeyPair() });
    serveForever(signed, honest);
    const confirmer = await tab(["tr-bound"], { keys: await newKeyPair() });
    serveForever(confirmer, honest);
    const view = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.state === "quarantined",
    );
    expect(view).toMatchObject({ state: "quarantined", failedAudits: 3 });
    expect(view.bindingFailedChecks).toBeGreaterThan(0);
    expect(view.reason).toMatch(/re-scored tokens implausible/);
    expect(view.reason).not.toMatch(/waits for a signed verifier/);
  });

  it("an operator's release judges new evidence afresh: a fixed tab is not quarantined again on its old answers", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tab(["tr-release"]);
    let answer: Answerer = spam;
    serveForever(liar, (job) => answer(job));
    const res = await chat("tr-release", { stream: true });
    const verifier = await bindingTab(tab, ["tr-release"]);
    serveForever(verifier, honest);
    const confirmer = await bindingTab(tab, ["tr-release"]);
    serveForever(confirmer, honest);
    await streamText(res);
    expect(
      (
        await waitFor(
          () => reputationOf(liar.nodeId),
          (v) => v.state === "quarantined",
        )
      ).state,
    ).toBe("quarantined");
    await gone(verifier);
    await gone(confirmer);
    // Its contributor fixed the model; an operator lifts the quarantine.
    answer = honest;
    await runInDurableObject(stub(), (obj) =>
      (obj as unknown as { parts: RegionParts }).parts.trust.release(liar.nodeId),
    );
    expect(await streamText(await chat("tr-release", { stream: true }))).toMatchObject({
      text: "You said: hi",
    });
    const second = await tab(["tr-release"]);
    // Without flipped tokens: a noisy honest verifier may fail a good answer now and then (about
    // 2% per token), which is the reputation test's subject, not this one's.
    const secondServed = serveForever(second, honest, { sd: 0, flipRate: 0, seed: 5 });
    const view = await waitFor(
      () => reputationOf(liar.nodeId),
      (v) => v.audits >= 3,
    );
    expect(secondServed.audits).toBe(1);
    expect(view.state).not.toBe("quarantined");
    // The record is kept: all audits (the spam's, confirmed, and the new one) still count in what
    // GET /v1/nodes shows.
    expect(view).toMatchObject({ audits: 3, failedAudits: 2 });
  });

  it("honest tabs auditing each other are not quarantined and leave probation", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const a = await tab(["tr-honest"]);
    const b = await tab(["tr-honest"]);
    serveForever(a, honest);
    serveForever(b, honest);
    for (let i = 0; i < 10; i++) {
      const out = await streamText(await chat("tr-honest", { stream: true }));
      expect(out.text).toBe("You said: hi");
    }
    const views = await waitFor(
      async () => [await reputationOf(a.nodeId), await reputationOf(b.nodeId)],
      (v) => v[0]!.audits + v[1]!.audits >= 9,
    );
    // Every finished job was audited by the other tab; none failed, the busier tab is trusted.
    expect(views[0]!.audits + views[1]!.audits).toBeGreaterThanOrEqual(9);
    for (const v of views) expect(v.state).not.toMatch(/quarantined|suspect/);
    expect(views.some((v) => v.audits >= 3 && v.state === "trusted")).toBe(true);
  });

  it("canaries catch a tab running a smaller model", async () => {
    // One canary prompt, so two honest tabs soon agree on its known answer.
    await withTrust("wnam", CANARIES_ONLY, ["what's a good name for a grey cat?"]);
    // The known answer first: two honest identities out of probation (only such identities may
    // confirm one: canaries.ts) answer the canary one after the other, then the small-model tab
    // serves alone. (Placement prefers a tab with observed speed over one on probation, so with
    // honest tabs connected the new tab may get no client job, hence no canary.)
    const a = await tab(["tr-canary"], { keys: await newKeyPair() });
    await pastProbation("wnam", a.nodeId);
    serveForever(a, honest);
    await streamText(await chat("tr-canary", { stream: true }));
    await waitFor(
      () => canaryAnswers(),
      (n) => n.candidates >= 1,
    );
    a.close();
    const b = await tab(["tr-canary"], { keys: await newKeyPair() });
    await pastProbation("wnam", b.nodeId);
    serveForever(b, honest);
    await streamText(await chat("tr-canary", { stream: true }));
    expect(
      (
        await waitFor(
          () => canaryAnswers(),
          (n) => n.confirmed >= 1,
        )
      ).confirmed,
    ).toBe(1);
    b.close();
    const small = await tab(["tr-canary"]);
    const smallServed = serveForever(small, smaller);
    const view = await waitFor(
      async () => {
        await streamText(await chat("tr-canary", { stream: true }));
        return reputationOf(small.nodeId);
      },
      (v) => v.state === "quarantined",
      45_000,
    );
    expect(view.state).toBe("quarantined");
    expect(view.reason).toMatch(/canaries failed/);
    expect(smallServed.canaries).toBeGreaterThanOrEqual(7);
    expect((await reputationOf(a.nodeId)).state).not.toBe("quarantined");
    expect((await reputationOf(b.nodeId)).state).not.toBe("quarantined");
  }, 60_000);
});
