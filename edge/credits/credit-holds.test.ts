import { SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import {
  balanceWhere,
  creditPost,
  keyAccount,
  ledgerCallsDone,
  linkBody,
  testKey,
} from "../../test/workerd/credit-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, jobToken, regionCounts, useTabs } from "../../test/workerd/tab-helpers.js";
import { ledgerStub } from "./ledger-client.js";

/**
 * A paid queue place sets credit aside under an id the Worker mints for that one job
 * (queue-place.ts), never under the client's x-request-id: a client may send the same id on
 * several requests, and the n choices of one request share it. Each waiting job is held and
 * charged on its own, and only its own end settles its hold.
 */

const tabs = useTabs();

/** A key linked to a tab identity that earned 10 credits, and that (now idle) tab. */
async function fundedKey(model: string) {
  const keys = await newKeyPair();
  const tab = await tabs.tab([model], { keys });
  const res = chat(model, { max_tokens: 20 });
  tab.serve(await tab.nextJob(), ["abcdefghij"], { completion_tokens: 10 });
  expect((await res).status).toBe(200);
  await balanceWhere(tab, (b) => b.earned === 10);
  const key = await testKey();
  expect((await creditPost("link", await linkBody(keys, key.id), key.key)).status).toBe(200);
  return { tab, key };
}

/** The tab takes a job and keeps it running: what comes next waits in the queue. */
async function busy(tab: ScriptedTab, model: string) {
  const res = chat(model);
  const job = await tab.nextJob();
  tab.accept(job);
  return {
    res,
    end: () => {
      tab.delta(job, 0, "busy");
      tab.done(job, "stop");
    },
  };
}

/** What the tab's identity has spent once the Region's settlements reached the ledger. */
async function spentBy(tab: ScriptedTab): Promise<number> {
  await ledgerCallsDone();
  return (await ledgerStub(appEnv).balance(tab.nodeId)).spent;
}

const interactive = (key: string, requestId?: string) => ({
  authorization: `Bearer ${key}`,
  "x-tabgrid-tier": "interactive",
  ...(requestId ? { "x-request-id": requestId } : {}),
});

describe("credit holds are per job", () => {
  it("two paid requests sent with the same x-request-id are each held and each charged", async () => {
    const { tab, key } = await fundedKey("ch-same-id");
    const first = await busy(tab, "ch-same-id");
    const headers = interactive(key.key, "same-request-id-1");
    const a = chat("ch-same-id", { max_tokens: 2 }, headers);
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(1));
    const b = chat("ch-same-id", { max_tokens: 2 }, headers);
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(2));
    // Each sets aside its most possible cost: 2 tokens × 2 credits.
    const held = (await keyAccount(key.key)).held;
    first.end();
    for (let i = 0; i < 2; i++) tab.serve(await tab.nextJob(), ["ok"], { completion_tokens: 2 });
    for (const r of [first.res, a, b]) expect((await r).status).toBe(200);
    expect({ held, spent: await spentBy(tab) }).toEqual({ held: 8, spent: 8 });
    expect((await keyAccount(key.key)).held).toBe(0);
  });

  it("n = 2 with a tier: each waiting choice is held and charged", async () => {
    const { tab, key } = await fundedKey("ch-n2");
    const first = await busy(tab, "ch-n2");
    const res = chat("ch-n2", { max_tokens: 2, n: 2 }, interactive(key.key));
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(2));
    const held = (await keyAccount(key.key)).held;
    first.end();
    for (let i = 0; i < 2; i++) tab.serve(await tab.nextJob(), ["ok"], { completion_tokens: 2 });
    for (const r of [first.res, res]) expect((await r).status).toBe(200);
    expect({ held, spent: await spentBy(tab) }).toEqual({ held: 8, spent: 8 });
  });

  it("a cancelled request reusing another's x-request-id releases only its own hold", async () => {
    const { tab, key } = await fundedKey("ch-decoy");
    const first = await busy(tab, "ch-decoy");
    const headers = interactive(key.key, "free-ride-id-01");
    const paid = chat("ch-decoy", { max_tokens: 2 }, headers);
    await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(1));
    // Streamed, so its headers (job id, read token) arrive while it waits.
    const decoy = await chat("ch-decoy", { max_tokens: 2, stream: true }, headers);
    expect(decoy.status).toBe(200);
    const del = await SELF.fetch(
      `http://tabgrid.test/v1/jobs/${decoy.headers.get("x-tabgrid-job-id")}`,
      { method: "DELETE", headers: { authorization: `Bearer ${key.key}`, ...jobToken(decoy) } },
    );
    expect(del.status).toBe(200);
    await decoy.body?.cancel();
    await ledgerCallsDone();
    const heldAfterDecoy = (await keyAccount(key.key)).held;
    first.end();
    tab.serve(await tab.nextJob(), ["ok"], { completion_tokens: 2 });
    for (const r of [first.res, paid]) expect((await r).status).toBe(200);
    // The paid request waited in the interactive place and delivered 2 tokens: 4 credits.
    expect({ heldAfterDecoy, spent: await spentBy(tab) }).toEqual({ heldAfterDecoy: 4, spent: 4 });
  });
});

describe("the ledger's holds", () => {
  /** An identity with `credit` earned, linked to a new key id (ledger calls only). */
  async function account(name: string, credit: number) {
    const ledger = ledgerStub(appEnv);
    const identity = `t_${name}_${crypto.randomUUID()}`;
    await ledger.balance(identity, `p_${name}`);
    await ledger.earn({
      identity,
      publicId: `p_${name}`,
      jobId: `job_${name}`,
      credit,
      tokens: credit,
      quarantined: false,
    });
    const keyId = `k${crypto.randomUUID().replaceAll("-", "")}`;
    expect(await ledger.link(identity, keyId, Date.now())).toBe("done");
    return { identity, keyId };
  }

  it("takes a hold id once, and settles it only for the key that made it", async () => {
    const ledger = ledgerStub(appEnv);
    const owner = await account("owner", 10);
    const other = await account("other", 10);
    expect(await ledger.hold("hold_a", owner.keyId, 4)).toBe(true);
    // The same id again is no second hold: the caller is told so (and gives no paid place).
    expect(await ledger.hold("hold_a", owner.keyId, 4)).toBe(false);
    expect(await ledger.hold("hold_a", other.keyId, 4)).toBe(false);
    expect((await ledger.keyAccount(owner.keyId)).held).toBe(4);
    expect((await ledger.keyAccount(other.keyId)).held).toBe(0);
    // Another key settling the id charges nothing, to anyone, and leaves the hold in place.
    expect(await ledger.settle("hold_a", other.keyId, 4)).toBe(0);
    expect((await ledger.balance(other.identity)).spent).toBe(0);
    expect((await ledger.keyAccount(owner.keyId)).held).toBe(4);
    expect(await ledger.settle("hold_a", owner.keyId, 4)).toBe(4);
    expect((await ledger.balance(owner.identity)).spent).toBe(4);
    expect((await ledger.keyAccount(owner.keyId)).held).toBe(0);
  });
});
