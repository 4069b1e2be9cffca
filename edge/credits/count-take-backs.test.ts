import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { utf8ByteLength } from "../../shared/protocol/frames.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { mostHonestTokens } from "../../shared/trust/token-counts.js";
import { NO_NOISE } from "../../test/support/deterministic-engine.js";
import { honest, serveForever, wordCount } from "../../test/workerd/answering-tab.js";
import {
  balanceWhere,
  creditPost,
  failLedgerCalls,
  keyAccount,
  ledgerCallsDone,
  ledgerOutboxSize,
  linkBody,
  testKey,
} from "../../test/workerd/credit-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  AUDIT_ALL,
  NO_CANARIES,
  bindingTab,
  reputationOf,
  waitFor,
  withTrust,
} from "../../test/workerd/trust-helpers.js";
import type { RegionParts } from "../region/region-parts.js";
import { regionStub } from "../region/region-stub.js";
import { ledgerStub } from "./ledger-client.js";

/**
 * Credit paid for an inflated token count is taken back once a second binding verifier confirms
 * the accusation (accusations.ts → region-credits.ts → the ledger's take-backs.ts; docs/credits.md
 * "Taken back"). A signed tab answers honestly but reports one token per byte; the client paid for
 * a queue place, so it was charged that count too. Scripted verifiers count as the deterministic
 * engine does (one token per word) and re-score without noise.
 */

const { tab } = useTabs();

/**
 * One inflated count decides a quarantine here (the honest rate's bound is ~5 in 100,000 and the
 * test's threshold 1 in 5,000), so the first binding audit of the liar's paid answer is an
 * accusation, held for a second verifier: the answer taken back from is the one the client paid for.
 */
const ONE_COUNT_DECIDES = {
  ...AUDIT_ALL,
  ...NO_CANARIES,
  honestCounts: { events: 0, trials: 100_000 },
  alpha: 1e-3,
};

/** Longer than waitFor's 4 s default: audits travel through two more tabs, on 2 busy cores in CI. */
const SETTLED_MS = 10_000;

/** A long enough answer that its inflation is more than the tolerance lets through. */
const LONG = {
  max_tokens: 64,
  messages: [{ role: "user", content: "tell me about the quiet grey cat on the warm roof" }],
};

/** What a verifier sends as its count: the deterministic engine's tokens of the answer. */
const verifierCount = (text: string) => wordCount(text);

/** Serve jobs honestly; re-score audits without noise and count their answers. */
const verify = (t: ScriptedTab) =>
  serveForever(t, honest, { noise: NO_NOISE, claim: (text) => wordCount(text) + 1 });

/** The identity's account in the ledger, once the Region's calls to it are done. */
/** What the Region itself holds the identity earned there (tab-trust.ts; GET /v1/nodes shows it). */
function regionCredits(tabId: string): Promise<number> {
  return runInDurableObject(regionStub(appEnv, "wnam"), (obj) =>
    (obj as unknown as { parts: RegionParts }).parts.trust.credits(tabId),
  );
}

async function account(tabId: string) {
  await ledgerCallsDone();
  return ledgerStub(appEnv).balance(tabId);
}

/**
 * A key linked to an identity that earned 200 credits on a model of its own (`model`), on a job no
 * audit samples (hotter than audits go): its tab stays idle and is never a verifier of the liar.
 */
async function fundedKey(model: string) {
  const keys = await newKeyPair();
  const patron = await tab([model], { keys });
  const res = chat(model, { max_tokens: 250, temperature: 1.5 });
  patron.serve(await patron.nextJob(), ["x".repeat(200)], { completion_tokens: 200 });
  expect((await res).status).toBe(200);
  await balanceWhere(patron, (b) => b.earned === 200);
  const key = await testKey();
  expect((await creditPost("link", await linkBody(keys, key.id), key.key)).status).toBe(200);
  return { patron, key };
}

/**
 * The liar, busy with a free job no audit samples (hotter than audits go), takes the key's paid
 * request from the queue and answers it honestly, reporting one token per byte. Returns that job,
 * its text and the busy job's credit.
 */
async function paidInflatedAnswer(liar: ScriptedTab, model: string, key: string) {
  const busy = chat(model, { temperature: 1.5 });
  const first = await liar.nextJob();
  liar.accept(first);
  const paid = chat(model, LONG, {
    authorization: `Bearer ${key}`,
    "x-tabgrid-tier": "interactive",
  });
  // While it waits, the most it can cost (max_tokens 64 × 2 credits) is set aside.
  await waitFor(
    async () => (await keyAccount(key)).held,
    (held) => held === 128,
    SETTLED_MS,
  );
  expect((await keyAccount(key)).held).toBe(128);
  liar.delta(first, 0, "busy");
  liar.done(first, "stop", { completion_tokens: 1 });
  const job: JobSpec = await liar.nextJob();
  const text = honest(job);
  liar.serve(job, [text], { completion_tokens: utf8ByteLength(text) });
  for (const r of [busy, paid]) expect((await r).status).toBe(200);
  const busyCredit = (await liar.next("job.credit")).credit;
  return { job, text, busyCredit };
}

/**
 * A liar's inflated count of an answer a key paid for, accused by one binding verifier and held
 * for a second: the patron whose key paid, the key, the liar, the job, and the liar's account
 * before anything was taken back.
 */
async function accusedPaidAnswer(model: string) {
  const { patron, key } = await fundedKey(`${model}-patron`);
  await withTrust("wnam", ONE_COUNT_DECIDES);
  const liar = await tab([model], { keys: await newKeyPair() });
  const { job, text, busyCredit } = await paidInflatedAnswer(liar, model, key.key);
  // "You said: tell me about the quiet grey cat on the warm roof": 59 bytes, 13 tokens.
  expect([utf8ByteLength(text), mostHonestTokens(verifierCount(text))]).toEqual([59, 23]);
  // Paid at the interactive weight and price: 59 × 2 credited, 59 × 2 charged.
  const credited = await account(liar.nodeId);
  expect(credited.earned).toBe(busyCredit + 118);
  expect((await account(patron.nodeId)).spent).toBe(118);

  // One binding verifier finds the count inflated: an accusation, held. Nothing taken yet.
  const accuser = await bindingTab(tab, [model]);
  verify(accuser);
  const held = await waitFor(
    () => reputationOf(liar.nodeId),
    (v) => /waits for a second verifier/.test(v.reason ?? ""),
    SETTLED_MS,
  );
  expect(held.reason).toMatch(/completion-token counts inflated.*waits for a second verifier/);
  return { patron, key, liar, job, accuser, credited };
}

/** A second binding verifier re-counts the held answer; wait for the liar's quarantine. */
async function confirm(model: string, liar: ScriptedTab) {
  const confirmer = await bindingTab(tab, [model]);
  verify(confirmer);
  const quarantined = await waitFor(
    () => reputationOf(liar.nodeId),
    (v) => v.state === "quarantined",
    SETTLED_MS,
  );
  expect(quarantined.reason).toMatch(/completion-token counts inflated/);
}

/** The ledger's take-back rows (its statement) for an identity, oldest first. */
function takeBackRows(
  identity: string,
): Promise<Array<{ job_id: string; taken: number; reason: string }>> {
  return runInDurableObject(ledgerStub(appEnv), (_obj, state) =>
    state.storage.sql
      .exec<{ job_id: string; taken: number; reason: string }>(
        `SELECT job_id, taken, reason FROM take_backs WHERE identity = ? ORDER BY at`,
        identity,
      )
      .toArray(),
  );
}

const REASON =
  /^credit taken back: token count of job job_\S+ inflated \(59 reported, at most 23 honest\), confirmed by two verifiers$/;

describe("credit paid for an inflated token count", () => {
  it("is taken back from the tab, and refunded to the client, once a second verifier confirms", async () => {
    const model = "tb-inflate";
    const { patron, key, liar, credited } = await accusedPaidAnswer(model);
    expect(await account(liar.nodeId)).toMatchObject({ earned: credited.earned });
    expect((await account(patron.nodeId)).spent).toBe(118);
    const regionBefore = await regionCredits(liar.nodeId);

    // Confirmed: the 36 tokens over the most an honest tab could have counted (23) are taken back
    // at the weight they were paid (2), and the client is given back what it paid for them (2 each).
    await confirm(model, liar);
    const after = await waitFor(
      () => account(liar.nodeId),
      (a) => a.earned < credited.earned,
      SETTLED_MS,
    );
    expect(after.earned).toBe(credited.earned - 72);
    expect(after.balance).toBe(credited.balance - 72);
    // The Region's own figure (GET /v1/nodes) falls by as much.
    expect(await regionCredits(liar.nodeId)).toBe(regionBefore - 72);
    expect((await account(patron.nodeId)).spent).toBe(118 - 72);
    expect(await keyAccount(key.key)).toMatchObject({ balance: 200 - 118 + 72, held: 0 });
    // The tab is told, with the reason in words (the contributor page shows it under its balance).
    const told = await balanceWhere(liar, (b) => (b.takenBack ?? 0) > 0);
    expect(told).toMatchObject({ takenBack: 72, earned: credited.earned - 72 });
    expect(told.lastTakeBack).toMatch(REASON);
  }, 30_000);

  it("is taken back when the ledger could not be reached at the confirmation (the Region retries)", async () => {
    const model = "tb-outage";
    const { liar, credited } = await accusedPaidAnswer(model);
    // The Region's first call carrying the take-back is refused; its outbox sends it again.
    const outage = await failLedgerCalls(1, (ops) => ops.some((op) => op.kind === "takeBack"));
    await confirm(model, liar);
    const after = await waitFor(
      () => account(liar.nodeId),
      (a) => a.earned < credited.earned,
      SETTLED_MS,
    );
    expect(outage.refused.some((kinds) => kinds.includes("takeBack"))).toBe(true);
    expect(after).toMatchObject({ earned: credited.earned - 72, takenBack: 72, quarantined: true });
    expect(await takeBackRows(liar.nodeId)).toHaveLength(1);
    expect(await ledgerOutboxSize()).toBe(0);
  }, 30_000);

  it("is not taken back on one verifier's word: unconfirmed, then contradicted, it takes nothing", async () => {
    const model = "tb-unconfirmed";
    const { patron, liar, accuser, credited } = await accusedPaidAnswer(model);
    // Held for a second verifier, however long: nothing is taken on the accuser's word.
    await new Promise((r) => setTimeout(r, 500));
    expect(await account(liar.nodeId)).toMatchObject({ earned: credited.earned, takenBack: 0 });
    expect((await account(patron.nodeId)).spent).toBe(118);

    // A second binding verifier finds nothing wrong (it scores the answer and sends no count, as a
    // page from before counts): contradicted. Still nothing taken.
    const second = await bindingTab(tab, [model]);
    serveForever(second, honest, { noise: NO_NOISE, counts: "none" });
    const accuserAfter = await waitFor(
      () => reputationOf(accuser.nodeId),
      (v) => v.accusations.contradicted === 1,
      SETTLED_MS,
    );
    expect(accuserAfter.accusations).toEqual({ confirmed: 0, contradicted: 1 });
    expect(await account(liar.nodeId)).toMatchObject({ earned: credited.earned, takenBack: 0 });
    expect((await account(patron.nodeId)).spent).toBe(118);
    expect(await takeBackRows(liar.nodeId)).toEqual([]);
  }, 30_000);

  it("is taken back once: a retried ledger call or a second confirmation of the answer takes nothing more", async () => {
    const model = "tb-once";
    const { patron, liar, job, credited } = await accusedPaidAnswer(model);
    await confirm(model, liar);
    await waitFor(
      () => account(liar.nodeId),
      (a) => a.earned < credited.earned,
      SETTLED_MS,
    );
    const taken = { liar: await account(liar.nodeId), patron: await account(patron.nodeId) };
    expect(taken.liar.takenBack).toBe(72);

    // The Region's call retried (the same job, identity and bound)…
    const again = await ledgerStub(appEnv).takeBack({
      jobId: job.id,
      identity: liar.nodeId,
      keepTokens: 23,
      reason: "retried",
    });
    expect(again).toMatchObject({ fresh: false, taken: 0, refunded: 0 });
    // …and the answer confirmed inflated again, with a lower count that would take more.
    await runInDurableObject(regionStub(appEnv, "wnam"), (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      parts.credits?.countConfirmed({
        jobId: job.id,
        subject: liar.nodeId,
        subjectPublic: "again",
        claimed: 59,
        counted: [1],
      });
    });
    expect(await account(liar.nodeId)).toEqual(taken.liar);
    expect(await account(patron.nodeId)).toEqual(taken.patron);
    const rows = await takeBackRows(liar.nodeId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ job_id: job.id, taken: 72 });
    expect(rows[0]!.reason).toMatch(REASON);
  }, 30_000);
});

describe("a take-back from a balance lower than the credit owed", () => {
  it("takes what the balance holds, never below zero, and records what was owed", async () => {
    const ledger = ledgerStub(appEnv);
    const identity = "n_short_balance";
    // 10 tokens credited at the interactive weight; then its key spends 16 of the 20.
    await ledger.earn({
      identity,
      publicId: "p_short",
      jobId: "job_short",
      credit: 20,
      tokens: 10,
      quarantined: false,
    });
    expect(await ledger.link(identity, "key_short", Date.now())).toBe("done");
    expect(await ledger.hold("hold_short", "key_short", 16)).toBe(true);
    expect(await ledger.settle("hold_short", "key_short", 16)).toBe(16);
    // Confirmed: 8 of its 10 tokens over (16 credits owed); 4 are left to take.
    const done = await ledger.takeBack({
      jobId: "job_short",
      identity,
      keepTokens: 2,
      reason: "credit taken back: token count of job job_short inflated",
    });
    expect(done).toMatchObject({ fresh: true, tokens: 8, owed: 16, taken: 4, refunded: 0 });
    expect(done.account).toMatchObject({ balance: 0, earned: 16, spent: 16, takenBack: 4 });
    expect(done.account.lastTakeBack).toBe(
      "credit taken back: token count of job job_short inflated",
    );
  });
});

describe("a confirmed inflated count re-prices the identity's other answers", () => {
  it("takes back, at the share the confirmed answer kept, from each answer of the last day, once", async () => {
    const ledger = ledgerStub(appEnv);
    const identity = "n_alike";
    const earn = (jobId: string, credit: number, tokens: number) =>
      ledger.earn({ identity, publicId: "p_alike", jobId, credit, tokens, quarantined: false });
    /** What the Region asks once two verifiers confirmed the job's count inflated. */
    const confirmedInflated = (jobId: string, keepTokens: number) =>
      ledger.takeBack({
        jobId,
        identity,
        keepTokens,
        reason: `credit taken back: token count of job ${jobId} inflated`,
      });
    // The audited answer (59 tokens at weight 2), two answers nobody counted, one short answer.
    await earn("job_alike_audited", 118, 59);
    await earn("job_alike_paid", 80, 40);
    await earn("job_alike_free", 30, 30);
    await earn("job_alike_short", 1, 1);
    // A key paid for "job_alike_paid" from another identity's balance (80 credits for 40 tokens).
    await ledger.earn({
      identity: "n_alike_patron",
      publicId: "p_alike_patron",
      jobId: "job_alike_patron",
      credit: 200,
      tokens: 200,
      quarantined: false,
    });
    expect(await ledger.link("n_alike_patron", "key_alike", Date.now())).toBe("done");
    expect(await ledger.hold("hold_alike", "key_alike", 80)).toBe(true);
    expect(
      await ledger.settle("hold_alike", "key_alike", 80, { jobId: "job_alike_paid", tokens: 40 }),
    ).toBe(80);

    // Confirmed: 23 of the audited answer's 59 tokens kept (36 × 2 taken). The others keep
    // ⌈23/59 of their tokens⌉: 16 of 40 (24 × 2 taken, 48 refunded), 12 of 30 (18 taken), 1 of 1.
    const done = await confirmedInflated("job_alike_audited", 23);
    expect(done).toMatchObject({ fresh: true, tokens: 36, taken: 72 });
    expect(done.alike).toEqual({
      answers: 2,
      tokens: 24 + 18,
      owed: 48 + 18,
      taken: 48 + 18,
      takenWithheld: 0,
      refunded: 48,
    });
    expect(done.account).toMatchObject({
      earned: 229 - 72 - 66,
      takenBack: 72 + 66,
      lastTakeBack:
        "credit taken back: token count of job job_alike_audited inflated; " +
        "2 other answers of the last day re-priced at the same share",
    });
    expect((await ledger.balance("n_alike_patron")).spent).toBe(80 - 48);
    const rows = (await takeBackRows(identity)).map((r) => [r.job_id, r.taken, r.reason]);
    expect(rows.sort()).toEqual([
      ["job_alike_audited", 72, expect.stringMatching(/re-priced at the same share$/)],
      [
        "job_alike_free",
        18,
        expect.stringMatching(/share confirmed honest on job job_alike_audited \(12 of 30 kept\)$/),
      ],
      ["job_alike_paid", 48, expect.stringMatching(/\(16 of 40 kept\)$/)],
    ]);

    // A second answer confirmed inflated later re-prices nothing twice.
    await earn("job_alike_later", 50, 50);
    const again = await confirmedInflated("job_alike_later", 10);
    expect(again).toMatchObject({ fresh: true, tokens: 40, taken: 40 });
    expect(again.alike.answers).toBe(0);
    expect(again.account.takenBack).toBe(72 + 66 + 40);
  });
});
