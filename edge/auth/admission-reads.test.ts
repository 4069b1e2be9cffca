import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { clientStub } from "./authenticate.js";
import type { ClientDurableObject } from "./client-do.js";

/** Count the client object's SQLite statements from here on (its own `sql`, wrapped in place). */
function countStatements(sql: SqlStorage): string[] {
  const seen: string[] = [];
  const exec = sql.exec.bind(sql);
  (sql as { exec: unknown }).exec = (query: string, ...bindings: unknown[]) => {
    seen.push(query.trim().split(/\s+/).slice(0, 4).join(" "));
    return exec(query, ...(bindings as []));
  };
  return seen;
}

describe("admission: the client's row and slots are read once per instance", () => {
  it("20 admitted and released requests read nothing after the first, and write the bucket and the slot", async () => {
    const stub = clientStub(appEnv, "ip:198.51.100.41");
    const limits = { rpm: 100, concurrent: 4 };
    const statements = await runInDurableObject(stub, async (obj: ClientDurableObject, ctx) => {
      await obj.admit(null, limits); // the first request reads the row and the slots
      const seen = countStatements(ctx.storage.sql);
      for (let i = 0; i < 20; i++) {
        const a = await obj.admit(null, limits);
        if (a.ok) await obj.release(a.slot);
      }
      return seen;
    });
    expect(statements.filter((q) => q.startsWith("SELECT"))).toEqual([]);
    // Per request: the bucket's UPDATE and the slot's INSERT, and the slot's DELETE at release.
    expect(statements.length).toBe(60);
  });

  it("limits hold from the copy, and a new instance reads the same state back", async () => {
    const stub = clientStub(appEnv, "ip:198.51.100.42");
    const limits = { rpm: 3, concurrent: 1 };
    const first = await stub.admit(null, limits);
    expect(first.ok).toBe(true);
    expect(await stub.admit(null, limits)).toMatchObject({ reason: "too_many_concurrent" });
    if (first.ok) await stub.release(first.slot, true); // refused before any job: token back
    if (first.ok) await stub.release(first.slot, true); // a second release changes nothing
    const second = await stub.admit(null, limits);
    expect(second.ok).toBe(true);
    // The held slot and the bucket (3 − 1 + 1 refunded − 1) survive an eviction.
    await evictDurableObject(stub);
    expect(await stub.admit(null, limits)).toMatchObject({ reason: "too_many_concurrent" });
    if (second.ok) await stub.release(second.slot);
    expect((await stub.admit(null, limits)).ok).toBe(true);
    const rows = await runInDurableObject(stub, (_obj, ctx) => ({
      slots: ctx.storage.sql.exec(`SELECT count(*) AS n FROM slots`).one().n,
      tokens: Math.floor(ctx.storage.sql.exec(`SELECT tokens FROM client`).one().tokens as number),
    }));
    expect(rows).toEqual({ slots: 1, tokens: 1 });
    // The last token, then refused by rate, whatever instance answers.
    await evictDurableObject(stub);
    expect((await stub.admit(null, { rpm: 3, concurrent: 5 })).ok).toBe(true);
    expect(await stub.admit(null, { rpm: 3, concurrent: 5 })).toMatchObject({
      reason: "rate_limited",
    });
  });
});
