import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { EXPIRE_WAITING_SQL } from "./audits.js";
import { regionStub } from "./region-stub.js";

/**
 * The expiry of waiting audits runs on every dispatch — each time a tab turns idle — so it must not
 * read every audit waiting (thousands fit in the audits' storage share). By the verifier index it
 * did: 1,000 expiries over 5,000 waiting audits took 1,107–1,737 ms in workerd; by the expiry index
 * 4–6 ms (sql-schema.ts `audits_expiry`, measured 2026-12-02).
 */
describe("waiting audits' expiry", () => {
  it("probes the expiry index, and deletes only the waiting audits past their time", async () => {
    const out = await runInDurableObject(regionStub(appEnv, "afr"), (_obj, ctx) => {
      const sql = ctx.storage.sql;
      const now = Date.now();
      const audit = (id: string, createdAt: number, verifier: string | null, returnedAt?: number) =>
        sql.exec(
          `INSERT INTO audits (id, subject, subject_public, verifier, model, payload, created_at,
             returned_at) VALUES (?, 's', 'p', ?, 'm', '{}', ?, ?)`,
          id,
          verifier,
          createdAt,
          returnedAt ?? null,
        );
      audit("old", now - 600_000, null);
      audit("new", now, null);
      audit("old-but-returned-lately", now - 600_000, null, now - 1_000);
      audit("old-but-out", now - 600_000, "n_verifier");
      const plan = sql
        .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${EXPIRE_WAITING_SQL}`, now - 300_000)
        .toArray()
        .map((r) => r.detail);
      const deleted = sql
        .exec<{ id: string }>(EXPIRE_WAITING_SQL, now - 300_000)
        .toArray()
        .map((r) => r.id);
      const left = sql
        .exec<{ id: string }>(`SELECT id FROM audits ORDER BY id`)
        .toArray()
        .map((r) => r.id);
      return { plan, deleted, left };
    });
    expect(out.plan.join(" ")).toMatch(/USING INDEX audits_expiry/);
    expect(out.deleted).toEqual(["old"]);
    expect(out.left).toEqual(["new", "old-but-out", "old-but-returned-lately"]);
  });
});
