import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { ANONYMOUS_IDLE_MS } from "./client-do.js";
import { clientStub } from "./client-slots.js";

/**
 * An anonymous address's Client object is deleted once idle: before, every address that ever
 * called kept a durable object (and an IPv6 client could mint them without end).
 */
const limits = { rpm: 5, concurrent: 1 };

/** The object's tables and alarm, as it holds them now. */
function storageOf(name: string) {
  return runInDurableObject(clientStub(appEnv, name), async (_obj, ctx) => ({
    tables: ctx.storage.sql
      .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`)
      .toArray()
      .map((r) => r.name)
      .filter((n) => !n.startsWith("_cf")),
    alarm: await ctx.storage.getAlarm(),
  }));
}

/** Move the object's last admitted request `ms` into the past (a new instance reads it back). */
async function idleFor(name: string, ms: number) {
  const stub = clientStub(appEnv, name);
  await runInDurableObject(stub, (_obj, ctx) => {
    ctx.storage.sql.exec(`UPDATE client SET refilled_at = refilled_at - ?`, ms);
  });
  await evictDurableObject(stub);
}

describe("an anonymous address's Client object", () => {
  it("has its idle check set and deletes itself once idle; the address then starts afresh", async () => {
    const name = "ip:198.51.100.181";
    const stub = clientStub(appEnv, name);
    const first = await stub.admit(null, limits);
    if (!first.ok) throw new Error("not admitted");
    await stub.release(first.slot);
    const before = await storageOf(name);
    expect(before.alarm).not.toBeNull();
    expect(before.tables).toEqual(expect.arrayContaining(["client", "slots"]));

    // Not idle long enough: looked at again later, nothing deleted.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await storageOf(name)).tables).toContain("client");

    await idleFor(name, ANONYMOUS_IDLE_MS + 1000);
    await runInDurableObject(stub, (_obj, ctx) => ctx.storage.setAlarm(Date.now()));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await storageOf(name)).toEqual({ tables: [], alarm: null });

    // The same instance serves the address again, from a fresh object.
    expect((await stub.admit(null, limits)).ok).toBe(true);
    expect((await storageOf(name)).tables).toContain("client");
  });

  it("is kept while a slot is open, however old its last request", async () => {
    const name = "ip:198.51.100.182";
    const stub = clientStub(appEnv, name);
    const held = await stub.admit(null, limits);
    expect(held.ok).toBe(true);
    await idleFor(name, ANONYMOUS_IDLE_MS + 1000);
    await runInDurableObject(stub, (_obj, ctx) => ctx.storage.setAlarm(Date.now()));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = await storageOf(name);
    expect(after.tables).toContain("slots");
    expect(after.alarm).not.toBeNull();
    expect(await stub.admit(null, limits)).toMatchObject({ reason: "too_many_concurrent" });
  });
});
