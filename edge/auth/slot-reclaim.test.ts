import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { hashKey, newApiKey } from "./api-key.js";
import { clientStub } from "./client-slots.js";

/**
 * When a Client object takes a slot back without being told (its release was lost), and when it
 * must not: a slot its jobs hold is reclaimed only once none of them runs, however long they run
 * (a streamed answer has no upper bound on its length: slot-table.ts JOB_CHECK_MS).
 */
const tabs = useTabs();
const limits = { rpm: 1000, concurrent: 1 };

/** Make every open slot of `client` due for a look now, as if its time had passed. */
async function makeSlotsDue(client: string): Promise<void> {
  const stub = clientStub(appEnv, client);
  await runInDurableObject(stub, (_obj, ctx) => {
    ctx.storage.sql.exec(`UPDATE slots SET expires_at = 0`);
  });
  // A new instance reads the slots back from SQLite.
  await evictDurableObject(stub);
}

describe("reclaiming a slot", () => {
  it("a slot whose job still streams past the slot's time is kept", async () => {
    const { id, key } = newApiKey();
    await clientStub(appEnv, `key:${id}`).createKey(id, await hashKey(key), "reclaim", limits);
    const auth = { authorization: `Bearer ${key}` };
    const tab = await tabs.tab(["reclaim-long"]);
    const res = await chat("reclaim-long", { stream: true }, auth);
    expect(res.status).toBe(200);
    const job = await tab.nextJob();
    tab.accept(job);
    tab.delta(job, 0, "a long answer ");
    await makeSlotsDue(`key:${id}`);
    // Before: reclaimed after SLOT_TTL_MS (15 min) whatever the job, so this was admitted.
    const second = await chat("reclaim-long", { stream: true }, auth);
    expect(second.status).toBe(429);
    await second.body?.cancel();
    tab.delta(job, 1, "ends");
    tab.done(job, "stop", { completion_tokens: 2 });
    expect(await res.text()).toContain("[DONE]");
  });

  it("a slot whose jobs ended without a word is reclaimed; one its request holds, after its time", async () => {
    const stub = clientStub(appEnv, "ip:198.51.100.171");
    const lost = await stub.admit(null, limits);
    if (!lost.ok || lost.slot === null) throw new Error("not admitted");
    // Handed to a job that no Region object knows (its release never came).
    await stub.hold(lost.slot, { add: [`job_wnam_${"0".repeat(32)}`], drop: ["request"] });
    expect(await stub.admit(null, limits)).toMatchObject({ reason: "too_many_concurrent" });
    await makeSlotsDue("ip:198.51.100.171");
    const next = await stub.admit(null, limits);
    expect(next.ok).toBe(true);
    // This one its request still holds (a crash lost its release): reclaimed once due.
    await makeSlotsDue("ip:198.51.100.171");
    expect((await stub.admit(null, limits)).ok).toBe(true);
  });

  it("a job that ended before the request's hand-over arrived leaves no hold", async () => {
    const stub = clientStub(appEnv, "ip:198.51.100.172");
    const first = await stub.admit(null, limits);
    if (!first.ok || first.slot === null) throw new Error("not admitted");
    const jobId = `job_wnam_${"1".repeat(32)}`;
    // The job's Region let go first, then the Worker's hand-over arrives.
    await stub.hold(first.slot, { drop: [jobId] });
    expect(await stub.admit(null, limits)).toMatchObject({ reason: "too_many_concurrent" });
    await stub.hold(first.slot, { add: [jobId], drop: ["request"] });
    expect((await stub.admit(null, limits)).ok).toBe(true);
  });
});
