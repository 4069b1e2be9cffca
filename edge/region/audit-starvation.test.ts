import { runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { nodeIdFromPublicKey } from "../../shared/protocol/node-identity.js";
import type { AuditAssign } from "../../shared/protocol/node-messages.js";
import { BIASED_SCORE_SINCE_PROTOCOL, PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { NO_NOISE } from "../../test/support/deterministic-engine.js";
import { honest, serveForever } from "../../test/workerd/answering-tab.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  AUDIT_ALL,
  NO_CANARIES,
  auditRows,
  bindingTab,
  waitFor,
  within,
  withTrust,
} from "../../test/workerd/trust-helpers.js";
import type { Accusation } from "./accusations.js";
import { migrate } from "../durable/migrations.js";
import type { RegionParts } from "./region-parts.js";
import { REGION_MIGRATIONS, migrate as migrateRegion } from "./sql-schema.js";
import { regionStub } from "./region-stub.js";

/**
 * Audits no idle verifier can take do not hold back those behind them (audits.ts `dispatch`). An
 * audit waits for an idle tab of its model that is not its subject; one of a biased, constrained
 * or windowed answer for a protocol-9 verifier; a held accusation for a binding verifier other
 * than its accuser. `dispatch` looked only at the 20 oldest waiting audits: when those were
 * audits no idle tab could take, an audit behind them that an idle verifier could take was not
 * sent until the front ones expired (5 min after they were sampled), and a steady stream of them
 * — say from the only tab serving a rare model — held it back for good. Each test puts N = 25
 * such audits (more than those 20) ahead of one an idle verifier can take; every test failed so
 * (and passed with N = 2).
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");
const N = 25;

// Each test starts with no audit waiting (one test's would otherwise wait ahead of the next's).
beforeEach(() =>
  runInDurableObject(stub(), (_obj, state) => void state.storage.sql.exec(`DELETE FROM audits`)),
);

/** `count` chats of `model` answered in turn (by whichever tab gets them), each audited. */
async function answered(model: string, count: number, extra: object = {}): Promise<void> {
  for (let i = 0; i < count; i++) {
    const out = await streamText(await chat(model, { stream: true, ...extra }));
    expect(out.done).toBe(true);
  }
}

/** The audits of `model` not out with a verifier. */
async function waiting(model: string): Promise<number> {
  return (await auditRows("wnam", model)).filter((r) => r.verifier === null).length;
}

function audits(t: ScriptedTab): AuditAssign[] {
  return t.received.filter((m): m is AuditAssign => m.type === "audit.assign");
}

/** The tab id of the identity `keys` prove (a signed tab's id is its key's). */
async function nodeIdOf(keys: CryptoKeyPair): Promise<string> {
  const spki = new Uint8Array(
    (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer,
  );
  return nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d));
}

describe("audits no idle verifier can take do not starve the ones behind them", () => {
  it("of a model no idle verifier serves", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    // The only tab serving a rare model: nobody else can audit its answers.
    const rare = await tab(["st-rare"]);
    serveForever(rare, honest, NO_NOISE);
    await answered("st-rare", N);
    const other = await tab(["st-common"]);
    serveForever(other, honest, NO_NOISE);
    await answered("st-common", 1);
    expect(await waiting("st-rare")).toBe(N);
    expect(await waiting("st-common")).toBe(1);

    const verifier = await tab(["st-common"]);
    const sent = await within(verifier.next("audit.assign"), 5_000, "the st-common audit sent");
    expect(sent.model).toBe("st-common");
    expect(await waiting("st-rare")).toBe(N);
  }, 30_000);

  it("only a protocol-9 verifier may take, with only an older one idle; client jobs flow meanwhile", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "st-biased";
    const subject = await tab([model]);
    serveForever(subject, honest, NO_NOISE);
    await answered(model, N, { logit_bias: { "42": 5 } });
    await answered(model, 1);
    expect(await waiting(model)).toBe(N + 1);

    // A page from before protocol 9 scores answers unbiased: it may take only the last audit.
    const old = await tab([model], { protocol: BIASED_SCORE_SINCE_PROTOCOL - 1 });
    const sent = await within(old.next("audit.assign"), 5_000, "the unbiased audit sent");
    expect(sent.sampling.logit_bias).toBeUndefined();
    expect(await waiting(model)).toBe(N);

    // Client jobs are not held back by the audits waiting: the subject answers at once.
    const t0 = Date.now();
    await answered(model, 1);
    expect(Date.now() - t0).toBeLessThan(5_000);
  }, 30_000);

  it("the verifiers idle at one dispatch each get one they can take, whatever the order of the waiting audits", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "st-both";
    const subject = await tab([model]);
    serveForever(subject, honest, NO_NOISE);
    await answered(model, N, { logit_bias: { "42": 5 } });
    await answered(model, 1);
    const current = await tab([model], { keys: await newKeyPair(), protocol: PROTOCOL_VERSION });
    await within(current.next("audit.assign"), 5_000, "a biased audit sent to the current page");
    const old = await tab([model], { protocol: BIASED_SCORE_SINCE_PROTOCOL - 1 });
    await within(old.next("audit.assign"), 5_000, "the unbiased audit sent to the old page");
    // Both idle again, holding none, with N - 1 biased audits and the plain one waiting — as when
    // verifiers went idle while client jobs waited (no audit is sent then) and the last waiting
    // job was taken. One dispatch (a tab joining) sends the current page a biased audit and the
    // old page the plain one, though once the current page has the oldest, none of the oldest
    // left is one the old page may take.
    await runInDurableObject(stub(), (obj, state) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      state.storage.sql.exec(
        `UPDATE audits SET verifier = NULL, sent_at = NULL WHERE model = ?`,
        model,
      );
      for (const t of [current, old])
        parts.tabs.update(parts.tabs.get(t.nodeId)!, { state: "idle" });
    });
    await tab(["st-elsewhere"]);
    // (The first audit each was sent was taken by `next` above: these are the dispatch's.)
    await waitFor(
      async () => audits(old).length + audits(current).length,
      (n) => n >= 2,
    );
    expect(audits(current).map((a) => a.sampling.logit_bias)).toEqual([{ "42": 5 }]);
    expect(audits(old).map((a) => a.sampling.logit_bias)).toEqual([undefined]);
  }, 30_000);

  it("of the only idle tab's own answers", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "st-self";
    // `late` takes a job and answers it only after `self` has answered N: its audit is the last.
    const late = await tab([model]);
    const lateRes = chat(model, { stream: true });
    const job = await late.nextJob();
    late.accept(job);
    late.delta(job, 0, "Hello");
    const self = await tab([model]);
    serveForever(self, honest, NO_NOISE);
    await answered(model, N);
    late.done(job, "stop", { completion_tokens: 1 });
    expect((await streamText(await lateRes)).done).toBe(true);
    // `late`, idle now, takes the oldest audit of `self`'s answers and keeps it; `self` may audit
    // only `late`'s answer.
    await within(late.next("audit.assign"), 5_000, "an audit of self's answers sent to late");
    const got = await waitFor(
      async () => audits(self).map((a) => a.auditId),
      (ids) => ids.length > 0,
      5_000,
    );
    expect(got).toEqual([`aud_${job.id}`]);
  }, 30_000);

  it.each([
    ["binding verifier that is their accuser", true],
    ["verifier whose word does not bind", false],
  ])(
    "of held accusations, with only a %s idle",
    async (_what, isAccuser) => {
      await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
      const model = isAccuser ? "st-accuser" : "st-anonymous";
      // The verifier to come: signed and trusted (binding), the accuser of the N oldest; or
      // anonymous (never binding).
      const keys = await newKeyPair();
      const accuser = isAccuser ? await nodeIdOf(keys) : "a_gone";
      const subject = await tab([model], { keys: await newKeyPair() });
      serveForever(subject, honest, NO_NOISE);
      await answered(model, N + 1);
      expect(await waiting(model)).toBe(N + 1);
      // The N oldest audits carry an accusation awaiting a second binding verifier's re-check.
      const plain = await runInDurableObject(stub(), (_obj, state) => {
        const a: Accusation = {
          verifier: accuser,
          publicId: "accuser",
          evidence: { audits: 1, failedAudits: 1, tokens: 13, implausible: 13 },
        };
        const sql = state.storage.sql;
        sql.exec(
          `UPDATE audits SET accusation = ? WHERE id IN
           (SELECT id FROM audits WHERE model = ? ORDER BY created_at LIMIT ?)`,
          JSON.stringify(a),
          model,
          N,
        );
        return sql
          .exec<{ id: string }>(
            `SELECT id FROM audits WHERE model = ? AND accusation IS NULL`,
            model,
          )
          .one().id;
      });
      const verifier = isAccuser ? await bindingTab(tab, [model], { keys }) : await tab([model]);
      const sent = await within(verifier.next("audit.assign"), 5_000, "the plain audit sent");
      expect(sent.auditId).toBe(plain);
      expect(await waiting(model)).toBe(N);
    },
    30_000,
  );
});

describe("the protocol an audit asks of its verifier", () => {
  it("is read from the payloads of audits kept before it had a column", async () => {
    const stub = appEnv.DIRECTORY.get(appEnv.DIRECTORY.idFromName("audit-protocol-migration"));
    const protocols = await runInDurableObject(stub, (_obj, state) => {
      const storage = state.storage;
      // A Region database as it was before the column (in a fresh object: its own tables aside).
      storage.sql.exec(`DROP TABLE IF EXISTS _migrations`);
      const protocolStep = REGION_MIGRATIONS.findIndex(
        (m) => typeof m === "string" && m.includes("ADD COLUMN protocol"),
      );
      migrate(storage, REGION_MIGRATIONS.slice(0, protocolStep));
      const payloads: Record<string, object> = {
        plain: { answer: "hi", sampling: { temperature: 0.7 } },
        emptyBias: { answer: "hi", sampling: { logit_bias: {} } },
        window: { answer: " later", prefix: "Once", sampling: {} },
        bias: { answer: "hi", sampling: { logit_bias: { "42": 5 } } },
        grammar: { answer: "{}", sampling: { constraint: { type: "json" } } },
      };
      for (const [id, payload] of Object.entries(payloads))
        storage.sql.exec(
          `INSERT INTO audits (id, subject, subject_public, model, payload, created_at)
           VALUES (?, 's', 's', 'm', ?, 0)`,
          id,
          JSON.stringify(payload),
        );
      migrateRegion(storage.sql);
      return Object.fromEntries(
        storage.sql
          .exec<{ id: string; protocol: number }>(`SELECT id, protocol FROM audits`)
          .toArray()
          .map((r) => [r.id, r.protocol]),
      );
    });
    const p9 = BIASED_SCORE_SINCE_PROTOCOL;
    expect(protocols).toEqual({ plain: 0, emptyBias: 0, window: p9, bias: p9, grammar: p9 });
  });
});

describe("audits reach a verifier as soon as it can take them", () => {
  it("a tab that finished loading the model (status idle) is sent a waiting audit at once", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const model = "st-loaded";
    const subject = await tab([model]);
    serveForever(subject, honest, NO_NOISE);
    await answered(model, 1);
    expect(await waiting(model)).toBe(1);
    // A tab still loading its model joins (nothing to verify with), then says it is ready: no
    // job ends, no tab joins, no audit comes back — its status is the only event.
    const verifier = await tab([]);
    verifier.send({ type: "status", state: "loading", models: [] });
    const sent = verifier.next("audit.assign");
    verifier.send({ type: "status", state: "idle", models: [model] });
    expect((await within(sent, 5_000, "the waiting audit sent")).model).toBe(model);
    expect(await waiting(model)).toBe(0);
  }, 30_000);
});
