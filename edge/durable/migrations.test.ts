import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CLIENT_MIGRATIONS } from "../auth/client-do.js";
import type { AppEnv } from "../env.js";
import { REGION_MIGRATIONS, migrate as migrateRegion } from "../region/sql-schema.js";
import { appliedMigrations, migrate, type Migration } from "./migrations.js";

const appEnv = env as unknown as AppEnv;

/** Run `fn` inside a fresh Directory object (real SQLite in workerd); its own tables are ignored. */
function inObject<R>(name: string, fn: (storage: DurableObjectStorage) => R | Promise<R>) {
  const stub = appEnv.DIRECTORY.get(appEnv.DIRECTORY.idFromName(`migrations-test-${name}`));
  return runInDurableObject(stub, async (_obj, state) => {
    // Start from "no migrations table", as a database created before the helper existed.
    state.storage.sql.exec(`DROP TABLE IF EXISTS _migrations`);
    return fn(state.storage);
  });
}

const tables = (storage: DurableObjectStorage) =>
  storage.sql
    .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
    .toArray()
    .map((r) => r.name);

describe("migrate", () => {
  it("applies steps in order once; a second run is a no-op", async () => {
    await inObject("once", (storage) => {
      const steps: Migration[] = [
        `CREATE TABLE t (a INTEGER)`,
        `ALTER TABLE t ADD COLUMN b TEXT`,
        (sql) => sql.exec(`INSERT INTO t (a, b) VALUES (1, 'x')`),
      ];
      expect(migrate(storage, steps)).toBe(3);
      expect(appliedMigrations(storage)).toBe(3);
      expect(migrate(storage, steps)).toBe(0);
      expect(storage.sql.exec(`SELECT count(*) AS n FROM t`).one().n).toBe(1);
      // Appending a step runs only the new one.
      expect(migrate(storage, [...steps, `ALTER TABLE t ADD COLUMN c TEXT`])).toBe(1);
      expect(appliedMigrations(storage)).toBe(4);
    });
  });

  it("a failing step is rolled back whole, earlier steps stay recorded, and it is retried", async () => {
    await inObject("fail", (storage) => {
      const broken: Migration[] = [
        `CREATE TABLE u (a INTEGER)`,
        (sql) => {
          sql.exec(`CREATE TABLE half (a INTEGER)`);
          throw new Error("step 2 failed");
        },
      ];
      expect(() => migrate(storage, broken)).toThrow("step 2 failed");
      expect(appliedMigrations(storage)).toBe(1);
      expect(tables(storage)).not.toContain("half");
      const fixed: Migration[] = [broken[0]!, `CREATE TABLE half (a INTEGER)`];
      expect(migrate(storage, fixed)).toBe(1);
      expect(tables(storage)).toContain("half");
    });
  });

  it("a Client database created before migrations existed migrates cleanly, keeping its rows", async () => {
    const stub = appEnv.CLIENT.get(appEnv.CLIENT.idFromName("migrations-test-legacy-client"));
    await runInDurableObject(stub, (_obj, state) => {
      const sql = state.storage.sql;
      // Today's (pre-helper) state: the tables and a row, no _migrations.
      sql.exec(`DROP TABLE IF EXISTS _migrations`);
      sql.exec(`INSERT INTO client VALUES (1, 'hash', 'legacy', 1, 0, 5, 1, 5, 1)`);
      expect(migrate(state.storage, CLIENT_MIGRATIONS)).toBe(CLIENT_MIGRATIONS.length);
      expect(sql.exec(`SELECT name FROM client`).one().name).toBe("legacy");
      expect(appliedMigrations(state.storage)).toBe(CLIENT_MIGRATIONS.length);
    });
  });

  it("a Region database keeps its existing `_migrations` count (same table format)", async () => {
    await inObject("region", (storage) => {
      migrateRegion(storage.sql);
      expect(appliedMigrations(storage)).toBe(REGION_MIGRATIONS.length);
      expect(tables(storage)).toEqual(expect.arrayContaining(["jobs", "nodes", "_migrations"]));
      // Running it again (every start-up does) changes nothing.
      migrateRegion(storage.sql);
      expect(appliedMigrations(storage)).toBe(REGION_MIGRATIONS.length);
    });
  });
});
