import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import { AlarmScheduler } from "./alarm-scheduler.js";

const appEnv = env as unknown as AppEnv;

/** The scheduler runs against a real Durable Object's storage (SQLite + alarm) in workerd. */
function withStorage<R>(
  name: string,
  fn: (s: AlarmScheduler, storage: DurableObjectStorage) => Promise<R>,
) {
  const stub = appEnv.REGION.get(appEnv.REGION.idFromName(`alarm-test-${name}`));
  return runInDurableObject(stub, async (_obj, ctx) =>
    fn(new AlarmScheduler(ctx.storage), ctx.storage),
  );
}

describe("AlarmScheduler", () => {
  it("keeps the physical alarm at the earliest timer", async () => {
    await withStorage("earliest", async (s, storage) => {
      await s.set("b", 5_000_000_000_000);
      await s.set("a", 4_000_000_000_000);
      expect(await storage.getAlarm()).toBe(4_000_000_000_000);
      await s.clear("a");
      expect(await storage.getAlarm()).toBe(5_000_000_000_000);
      await s.clear("b");
      expect(await storage.getAlarm()).toBeNull();
    });
  });

  it("re-arming a name replaces its deadline", async () => {
    await withStorage("rearm", async (s, storage) => {
      await s.set("lease:j1", 5_000_000_000_000);
      await s.set("lease:j1", 4_500_000_000_000);
      expect(await storage.getAlarm()).toBe(4_500_000_000_000);
      expect(await s.takeDue(4_600_000_000_000)).toEqual(["lease:j1"]);
      expect(s.has("lease:j1")).toBe(false);
    });
  });

  it("takeDue returns due timers in deadline order and leaves the rest armed", async () => {
    await withStorage("due", async (s, storage) => {
      await s.set("x", 30);
      await s.set("y", 10);
      await s.set("z", 9_000_000_000_000);
      expect(await s.takeDue(100)).toEqual(["y", "x"]);
      expect(await storage.getAlarm()).toBe(9_000_000_000_000);
    });
  });

  it("clearPrefix removes one job's timers only", async () => {
    await withStorage("prefix", async (s) => {
      await s.set("lease:j1", 1);
      await s.set("detach:j1", 2);
      await s.set("lease:j2", 3);
      await s.clearPrefix("lease:");
      expect(s.has("detach:j1")).toBe(true);
      expect(s.has("lease:j2")).toBe(false);
    });
  });

  it("a due timer fires the object's alarm handler", async () => {
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("alarm-test-fire"));
    await runInDurableObject(stub, async (_obj, ctx) => {
      await new AlarmScheduler(ctx.storage).set("sweep:test", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
  });
});
