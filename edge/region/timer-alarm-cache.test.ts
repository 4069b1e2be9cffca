import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import { TimerTable, type TimerCodec, type TimerStorage } from "./timer-table.js";

const appEnv = env as unknown as AppEnv;
const names: TimerCodec<string> = { encode: (n) => n, decode: (n) => n };
const T = 4_000_000_000_000;

/** A real object's storage, with its alarm calls counted (each is a storage round trip). */
function counted(storage: DurableObjectStorage) {
  const calls = { get: 0, set: 0, delete: 0 };
  const wrapped: TimerStorage = {
    sql: storage.sql,
    getAlarm: () => (calls.get++, storage.getAlarm()),
    setAlarm: (at) => (calls.set++, storage.setAlarm(at)),
    deleteAlarm: () => (calls.delete++, storage.deleteAlarm()),
  };
  return { calls, wrapped };
}

function withStorage(
  name: string,
  fn: (storage: DurableObjectStorage) => Promise<void>,
): Promise<void> {
  const stub = appEnv.REGION.get(appEnv.REGION.idFromName(`alarm-cache-${name}`));
  return runInDurableObject(stub, async (_obj, ctx) => {
    ctx.storage.sql.exec(`DELETE FROM timers`);
    await ctx.storage.deleteAlarm();
    try {
      await fn(ctx.storage);
    } finally {
      ctx.storage.sql.exec(`DELETE FROM timers`);
      await ctx.storage.deleteAlarm();
    }
  });
}

describe("TimerTable keeps the alarm time in memory", () => {
  it("timer changes that do not move the earliest time make no alarm call", async () => {
    await withStorage("calls", async (storage) => {
      const { calls, wrapped } = counted(storage);
      const table = new TimerTable(wrapped, names);
      await table.set("lease:a", T);
      expect(calls).toEqual({ get: 1, set: 1, delete: 0 });
      // A later timer, clearing one never armed, and clearing the later one: none moves the alarm.
      await table.set("lease:b", T + 1_000);
      await table.clear("wait:a");
      await table.clear("lease:b");
      await table.set("lease:b", T + 2_000);
      expect(calls).toEqual({ get: 1, set: 1, delete: 0 });
      expect(await storage.getAlarm()).toBe(T);
    });
  });

  it("the alarm follows the earliest timer when timers are replaced and removed", async () => {
    await withStorage("follows", async (storage) => {
      const table = new TimerTable(storage, names);
      await table.set("a", T);
      await table.set("b", T + 1_000);
      await table.set("a", T + 3_000); // replaced: b is now the earliest
      expect(await storage.getAlarm()).toBe(T + 1_000);
      await table.set("c", T - 500);
      expect(await storage.getAlarm()).toBe(T - 500);
      await table.clear("c"); // removed: b again
      expect(await storage.getAlarm()).toBe(T + 1_000);
      await table.clear("b");
      expect(await storage.getAlarm()).toBe(T + 3_000);
      await table.clear("a");
      expect(await storage.getAlarm()).toBeNull();
    });
  });

  it("after a wake-up, a timer armed for the very time that fired still gets the alarm", async () => {
    await withStorage("wake", async (storage) => {
      const table = new TimerTable(storage, names);
      await table.set("x", T);
      // The runtime consumes the alarm that fires; the table's memory still says T.
      await storage.deleteAlarm();
      await table.runDue((name) => (name === "x" ? table.set("y", T) : Promise.resolve()), T);
      expect(table.has("y")).toBe(true);
      expect(await storage.getAlarm()).toBe(T);
    });
  });

  it("a failed alarm call is not remembered as done", async () => {
    await withStorage("fails", async (storage) => {
      let failNext = false;
      const table = new TimerTable(
        {
          sql: storage.sql,
          getAlarm: () => storage.getAlarm(),
          setAlarm: (at) =>
            failNext
              ? ((failNext = false), Promise.reject(new Error("storage unavailable")))
              : storage.setAlarm(at),
          deleteAlarm: () => storage.deleteAlarm(),
        },
        names,
      );
      failNext = true;
      await expect(table.set("a", T)).rejects.toThrow("storage unavailable");
      // The row is there; the next change syncs the alarm to it.
      await table.set("b", T + 1_000);
      expect(await storage.getAlarm()).toBe(T);
    });
  });
});
