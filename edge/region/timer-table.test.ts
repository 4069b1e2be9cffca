import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import { regionTimerCodec, type RegionTimer } from "./region-timers.js";
import { RETRY_DELAY_MS, TimerTable, type TimerCodec } from "./timer-table.js";

const appEnv = env as unknown as AppEnv;
/** Plain names, so these tests see the table as it is stored. */
const names: TimerCodec<string> = { encode: (n) => n, decode: (n) => n };

/**
 * The table runs against a real Durable Object's storage (SQLite + alarm), injected. Each test
 * leaves no timer and no physical alarm behind: a stray alarm firing the real Region handler after
 * the test (or during the runner's storage clean-up) is not what these tests are about.
 */
function withStorage<R>(
  name: string,
  fn: (s: TimerTable<string>, storage: DurableObjectStorage) => Promise<R>,
) {
  const stub = appEnv.REGION.get(appEnv.REGION.idFromName(`alarm-test-${name}`));
  return runInDurableObject(stub, async (_obj, ctx) => {
    try {
      return await fn(new TimerTable(ctx.storage, names), ctx.storage);
    } finally {
      ctx.storage.sql.exec(`DELETE FROM timers`);
      await ctx.storage.deleteAlarm();
    }
  });
}

/** Runs due timers, recording which ran; `fail` names throw (once each, unless `always`). */
function recorder(fail: string[] = [], always = false) {
  const ran: string[] = [];
  const failed = new Set<string>();
  const handle = async (name: string) => {
    ran.push(name);
    if (fail.includes(name) && (always || !failed.has(name))) {
      failed.add(name);
      throw new Error(`handler for ${name} failed`);
    }
  };
  return { ran, handle };
}

describe("TimerTable", () => {
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

  it("re-arming a timer replaces its deadline", async () => {
    await withStorage("rearm", async (s, storage) => {
      await s.set("lease:j1", 5_000_000_000_000);
      await s.set("lease:j1", 4_500_000_000_000);
      expect(await storage.getAlarm()).toBe(4_500_000_000_000);
      const { ran, handle } = recorder();
      await s.runDue(handle, 4_600_000_000_000);
      expect(ran).toEqual(["lease:j1"]);
      expect(s.has("lease:j1")).toBe(false);
    });
  });

  it("runs due timers in deadline order, deletes them, and leaves the rest armed", async () => {
    await withStorage("due", async (s, storage) => {
      await s.set("x", 30);
      await s.set("y", 10);
      await s.set("z", 9_000_000_000_000);
      const { ran, handle } = recorder();
      await s.runDue(handle, 100);
      expect(ran).toEqual(["y", "x"]);
      expect([s.has("x"), s.has("y"), s.has("z")]).toEqual([false, false, true]);
      expect(await storage.getAlarm()).toBe(9_000_000_000_000);
    });
  });

  it("a handler that re-arms its own timer keeps the new deadline", async () => {
    await withStorage("self-rearm", async (s, storage) => {
      await s.set("liveness", 10);
      await s.runDue(async (name) => s.set(name, 8_000_000_000_000), 100);
      expect(s.has("liveness")).toBe(true);
      expect(await storage.getAlarm()).toBe(8_000_000_000_000);
    });
  });

  it("a timer whose handler throws is kept, the others still run, and the error is rethrown", async () => {
    await withStorage("throws", async (s, storage) => {
      // Real times: the runtime moves an alarm set in the past to now.
      const now = Date.now();
      await s.set("a", now - 30);
      await s.set("b", now - 20);
      await s.set("c", now - 10);
      const { ran, handle } = recorder(["b"]);
      await expect(s.runDue(handle, now)).rejects.toThrow("handler for b failed");
      expect(ran).toEqual(["a", "b", "c"]);
      expect([s.has("a"), s.has("b"), s.has("c")]).toEqual([false, true, false]);
      // The physical alarm is re-armed for the failed timer, after a pause.
      expect(await storage.getAlarm()).toBe(now + RETRY_DELAY_MS);
      // The retry runs it again; this time it succeeds and the timer is gone.
      await s.runDue(handle, now + RETRY_DELAY_MS);
      expect(ran).toEqual(["a", "b", "c", "b"]);
      expect(s.has("b")).toBe(false);
      expect(await storage.getAlarm()).toBeNull();
    });
  });

  it("a timer that keeps failing is never lost", async () => {
    await withStorage("keeps-failing", async (s) => {
      await s.set("stuck", 10);
      const { ran, handle } = recorder(["stuck"], true);
      for (let i = 0; i < 3; i++) await expect(s.runDue(handle, 100 + i)).rejects.toThrow();
      expect(ran).toEqual(["stuck", "stuck", "stuck"]);
      expect(s.has("stuck")).toBe(true);
    });
  });

  it("a name no codec knows is dropped rather than retried forever", async () => {
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("alarm-test-unknown"));
    await runInDurableObject(stub, async (_obj, ctx) => {
      ctx.storage.sql.exec(`INSERT OR REPLACE INTO timers (name, at) VALUES ('sweep:old', 5)`);
      const table = new TimerTable(ctx.storage, regionTimerCodec);
      const ran: RegionTimer[] = [];
      await table.runDue(async (t) => void ran.push(t), 100);
      expect(ran).toEqual([]);
      expect(
        ctx.storage.sql.exec(`SELECT 1 FROM timers WHERE name = 'sweep:old'`).toArray(),
      ).toEqual([]);
    });
  });

  it("Region timers keep their stored names (timers armed before an upgrade still decode)", () => {
    const timers: RegionTimer[] = [
      { kind: "lease", jobId: "job_wnam_0123" },
      { kind: "wait", jobId: "j" },
      { kind: "detach", jobId: "j" },
      { kind: "expire", jobId: "j" },
      { kind: "report" },
      { kind: "liveness" },
      { kind: "audit", auditId: "aud_job_wnam_0123" },
    ];
    const encoded = timers.map((t) => regionTimerCodec.encode(t));
    expect(encoded).toEqual([
      "lease:job_wnam_0123",
      "wait:j",
      "detach:j",
      "expire:j",
      "report",
      "liveness",
      "audit:aud_job_wnam_0123",
    ]);
    expect(encoded.map((n) => regionTimerCodec.decode(n))).toEqual(timers);
    for (const bad of ["sweep:x", "lease:", "lease", "audit:", "nope"])
      expect(regionTimerCodec.decode(bad)).toBeNull();
  });

  it("a due timer fires the object's alarm handler", async () => {
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("alarm-test-fire"));
    await runInDurableObject(stub, async (_obj, ctx) => {
      await new TimerTable(ctx.storage, regionTimerCodec).set({ kind: "report" }, Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
  });
});
