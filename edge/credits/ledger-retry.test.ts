import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  balanceWhere,
  failLedgerCalls,
  ledgerCallsDone,
  ledgerOutboxSize,
} from "../../test/workerd/credit-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "../region/region-stub.js";
import { ledgerStub } from "./ledger-client.js";
import { LedgerOutbox } from "./ledger-outbox.js";
import type { LedgerOp } from "./ledger-types.js";

/**
 * A Region's changes to the credit ledger survive a ledger that cannot be reached for a while
 * (edge/credits/ledger-outbox.ts). Before the outbox, a failed call was logged and lost: the tab's
 * credit never reached the ledger (its balance stayed 0), and a quarantine or a take-back confirmed
 * by two verifiers never happened there.
 */

const tabs = useTabs();

/** Serve one client request on `tab` with `tokens` completion tokens. */
async function serveOne(tab: ScriptedTab, model: string, tokens: number) {
  const res = chat(model, { max_tokens: 20 });
  const job = await tab.nextJob();
  tab.serve(job, ["abcdefghijklmnop".slice(0, tokens)], { completion_tokens: tokens });
  expect((await res).status).toBe(200);
}

const earns = (ops: LedgerOp[]) => ops.some((op) => op.kind === "earn");

describe("the Region's ledger outbox", () => {
  it("credits a job whose ledger calls failed twice, once the ledger answers, and tells the tab", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["lr-earn"], { keys });
    expect(await tab.next("credit.balance")).toMatchObject({ earned: 0 });
    const outage = await failLedgerCalls(2, earns);

    await serveOne(tab, "lr-earn", 3);
    // The first call and the first retry were refused; the second retry lands the credit.
    expect(await balanceWhere(tab, (b) => b.earned > 0)).toMatchObject({ earned: 3, balance: 3 });
    expect(outage.refused).toEqual([["earn"], ["earn"]]);
    expect(await ledgerStub(appEnv).balance(tab.nodeId)).toMatchObject({ earned: 3 });
    expect(await ledgerOutboxSize()).toBe(0);

    // Sent again after a lost answer, nothing is credited twice (the ledger's earning is once per
    // job and identity): the next job adds its own 4 only.
    await serveOne(tab, "lr-earn", 4);
    expect(await balanceWhere(tab, (b) => b.earned > 3)).toMatchObject({ earned: 7 });
  });

  it("keeps the line in the Region's storage: a Region woken with operations in it sends them", async () => {
    const keys = await newKeyPair();
    const tab = await tabs.tab(["lr-wake"], { keys });
    await tab.next("credit.balance");
    // A long outage: the live outbox's own retries are refused throughout.
    const outage = await failLedgerCalls(1_000, earns);
    await serveOne(tab, "lr-wake", 5);
    await ledgerCallsDone();
    expect(outage.refused.length).toBeGreaterThan(0);
    expect(await ledgerOutboxSize()).toBe(1);
    expect(await ledgerStub(appEnv).balance(tab.nodeId)).toMatchObject({ earned: 0 });

    // What a new instance of the object finds after an eviction: the same SQLite, and a ledger that
    // answers. It sends the earning on waking (RegionCredits.resume → LedgerOutbox.resume).
    const taken = await runInDurableObject(regionStub(appEnv, "wnam"), async (_obj, ctx) => {
      const done: LedgerOp["kind"][] = [];
      const woken = new LedgerOutbox({
        sql: ctx.storage.sql,
        apply: (ops) => ledgerStub(appEnv).apply(ops),
        retryAt: () => Promise.reject(new Error("the ledger answers: no retry")),
        done: (op) => done.push(op.kind),
      });
      expect(woken.size).toBe(1);
      woken.resume();
      await woken.idle();
      return { done, left: woken.size };
    });
    outage.end();
    expect(taken).toEqual({ done: ["earn"], left: 0 });
    expect(await ledgerStub(appEnv).balance(tab.nodeId)).toMatchObject({ earned: 5, balance: 5 });
  });

  it("counts a call that never answers as failed, so the line goes on", async () => {
    // A Region object no test sends work to: its outbox is this test's alone.
    const result = await runInDurableObject(regionStub(appEnv, "oc"), async (_obj, ctx) => {
      const retries: number[] = [];
      const done: string[] = [];
      let calls = 0;
      const outbox = new LedgerOutbox({
        sql: ctx.storage.sql,
        // The first call hangs, as an RPC to an object that never replies; the next is answered.
        apply: (ops) => (++calls === 1 ? new Promise(() => {}) : ledgerStub(appEnv).apply(ops)),
        retryAt: async (at) => void retries.push(at),
        done: (op) => done.push(op.kind),
        callTimeoutMs: 50,
      });
      const earning = {
        identity: "n_hanging_ledger",
        publicId: "p_hanging",
        jobId: "job_hanging",
        credit: 2,
        tokens: 2,
        quarantined: false,
      };
      outbox.push({ kind: "earn", earning });
      await outbox.idle();
      const afterHang = { retries: retries.length, left: outbox.size, done: [...done] };
      await outbox.flush(); // what the retry timer does when it fires
      return { afterHang, after: { left: outbox.size, done } };
    });
    expect(result.afterHang).toEqual({ retries: 1, left: 1, done: [] });
    expect(result.after).toEqual({ left: 0, done: ["earn"] });
    expect(await ledgerStub(appEnv).balance("n_hanging_ledger")).toMatchObject({ earned: 2 });
  });
});
