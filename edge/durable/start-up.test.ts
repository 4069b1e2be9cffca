import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { AppEnv } from "../env.js";
import { appliedMigrations } from "./migrations.js";
import { startUp } from "./start-up.js";

const appEnv = env as unknown as AppEnv;

function inState<R>(name: string, fn: (state: DurableObjectState) => Promise<R>) {
  const stub = appEnv.DIRECTORY.get(appEnv.DIRECTORY.idFromName(`start-up-test-${name}`));
  return runInDurableObject(stub, (_obj, state) => fn(state));
}

describe("startUp", () => {
  it("runs migrations, then load, once; ready() resolves after both", async () => {
    await inState("ok", async (state) => {
      state.storage.sql.exec(`DROP TABLE IF EXISTS _migrations`);
      const order: string[] = [];
      const ready = startUp(state, {
        migrations: [
          (sql) => {
            order.push("migrate");
            sql.exec(`CREATE TABLE IF NOT EXISTS s (a INTEGER)`);
          },
        ],
        load: async () => {
          order.push("load");
        },
      });
      await ready();
      await ready();
      expect(order).toEqual(["migrate", "load"]);
      expect(appliedMigrations(state.storage)).toBe(1);
    });
  });

  it("a failing start-up is rethrown to the next event, which retries it", async () => {
    await inState("fail", async (state) => {
      const spy = vi.spyOn(console, "error").mockImplementation(() => {});
      let attempts = 0;
      const ready = startUp(state, {
        load: () => {
          attempts++;
          if (attempts < 3) throw new Error(`load failed ${attempts}`);
        },
      });
      // The constructor's attempt failed; the first event retries once and gets the error.
      await expect(ready()).rejects.toThrow("load failed 2");
      await ready();
      expect(attempts).toBe(3);
      await ready();
      expect(attempts).toBe(3);
      spy.mockRestore();
    });
  });
});
