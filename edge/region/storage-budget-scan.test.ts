import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import type { JobRequest } from "./job-request.js";
import { newJobId, specOf } from "./job-request.js";
import { migrate } from "./sql-schema.js";
import { StorageBudget } from "./storage-budget.js";
import { answerByteCap } from "./usage-bounds.js";

const appEnv = env as unknown as AppEnv;

function request(i: number, maxTokens: number): JobRequest {
  return {
    job: {
      model: "sb-scan",
      input: { kind: "chat", messages: [{ role: "user", content: `question ${i}` }] },
      sampling: { max_tokens: maxTokens },
    },
  } as unknown as JobRequest;
}

/** Writes the job as job-store.ts `create` does: the columns the budget counts. */
function store(sql: SqlStorage, req: JobRequest): string {
  const spec = specOf(req, newJobId("wnam"));
  const now = Date.now();
  sql.exec(
    `INSERT INTO jobs (id, request_id, model, kind, state, created_at, updated_at, spec, answer_cap_bytes)
     VALUES (?, ?, ?, 'chat', 'queued', ?, ?, ?, ?)`,
    spec.id,
    spec.id,
    spec.model,
    now,
    now,
    JSON.stringify(spec),
    answerByteCap(spec.sampling.max_tokens),
  );
  return spec.id;
}

/** The SQL handle, counting the aggregate scans over the whole jobs table (`SUM(` … `FROM jobs`). */
function counting(sql: SqlStorage): { sql: SqlStorage; scans: () => number } {
  let scans = 0;
  const exec: SqlStorage["exec"] = (query, ...bindings) => {
    if (/SUM\(/i.test(query) && /FROM jobs\s*$/i.test(query.trim())) scans++;
    return sql.exec(query, ...bindings);
  };
  return {
    sql: new Proxy(sql, { get: (t, k) => (k === "exec" ? exec : Reflect.get(t, k)) }),
    scans: () => scans,
  };
}

describe("the storage budget's check per request", () => {
  it("does not scan every stored job on each new job, and never lets the store pass the budget", async () => {
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("storage-budget-scan-test"));
    await runInDurableObject(stub, (_obj, state) => {
      const sql = state.storage.sql;
      migrate(sql);
      sql.exec(`DELETE FROM jobs`);
      const limits = { maxBytes: 2_000_000, maxJobs: 300 };
      const counted = counting(sql);
      const budget = new StorageBudget(counted.sql, limits, "wnam");
      const check = new StorageBudget(sql, limits, "wnam");
      let admitted = 0;
      let scansFarFromLimit = 0;
      let refused = 0;
      for (let i = 0; i < 400; i++) {
        const req = request(i, 1 + (i % 40));
        if (admitted < limits.maxJobs * 0.8 - 1) scansFarFromLimit = counted.scans();
        if (budget.makeRoom(req)) refused++;
        else {
          store(sql, req);
          admitted++;
        }
        // After every job written, a full scan finds the store within both limits.
        const now = check.usage();
        expect(now.bytes).toBeLessThanOrEqual(limits.maxBytes);
        expect(now.jobs).toBeLessThanOrEqual(limits.maxJobs);
      }
      // Unfinished jobs alone fill it (nothing finished to evict): the rest are refused.
      expect(admitted).toBe(limits.maxJobs);
      expect(refused).toBe(400 - limits.maxJobs);
      // Below 80 % of the budget one scan serves many jobs (a scan older than 1 s is redone;
      // workerd's clock stands still within this synchronous loop); past it, every check scans.
      expect(scansFarFromLimit).toBeLessThanOrEqual(2);
      expect(counted.scans()).toBeGreaterThan(limits.maxJobs * 0.2);
    });
  });
});
