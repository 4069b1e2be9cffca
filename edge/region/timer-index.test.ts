import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import { TimerTable, type TimerCodec } from "./timer-table.js";

const appEnv = env as unknown as AppEnv;
const names: TimerCodec<string> = { encode: (n) => n, decode: (n) => n };

/** SQLite's plan for a query, one line per step. */
function plan(sql: SqlStorage, query: string, ...bindings: unknown[]): string {
  return sql
    .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, ...(bindings as []))
    .toArray()
    .map((r) => r.detail)
    .join("; ");
}

describe("the timer table finds the earliest and the due timers without reading every row", () => {
  it("a table of 2,000 expiry timers: min(at) and the due ones come from the index", async () => {
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("alarm-test-index"));
    const out = await runInDurableObject(stub, async (_obj, ctx) => {
      const sql = ctx.storage.sql;
      const table = new TimerTable(ctx.storage, names);
      try {
        const far = Date.now() + 3_600_000;
        for (let i = 0; i < 2000; i++) {
          sql.exec(
            `INSERT OR REPLACE INTO timers (name, at) VALUES (?, ?)`,
            `expire:j${i}`,
            far + i,
          );
        }
        await table.set("lease:now", Date.now() + 60_000);
        const ran: string[] = [];
        // What each wake-up and each timer change ask (timer-table.ts), and what they answer.
        await table.runDue(async (t) => void ran.push(t), Date.now() + 61_000);
        return {
          ran,
          min: plan(sql, `SELECT min(at) AS at FROM timers`),
          due: plan(sql, `SELECT name, at FROM timers WHERE at <= ? ORDER BY at, name`, 0),
        };
      } finally {
        sql.exec(`DELETE FROM timers`);
        await ctx.storage.deleteAlarm();
      }
    });
    expect(out.ran).toEqual(["lease:now"]);
    // A scan reads all 2,000 rows; a SEARCH (or the min optimisation) reads one, or the due ones.
    expect(out.min).not.toMatch(/\bSCAN timers\b(?! USING)/);
    expect(out.min).toMatch(/timers_by_at/);
    expect(out.due).toMatch(/SEARCH timers USING (COVERING )?INDEX timers_by_at/);
    expect(out.due).not.toMatch(/TEMP B-TREE/);
  });
});
