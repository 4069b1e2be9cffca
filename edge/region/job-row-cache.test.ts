import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { JobStore } from "./job-store.js";
import { regionStub } from "./region-stub.js";

/** A Region object's real SQLite, with the full row reads (`SELECT * FROM jobs`) counted. */
function counting(sql: SqlStorage) {
  const n = { fullReads: 0 };
  const wrapped = {
    exec: (query: string, ...bindings: unknown[]) => {
      if (/SELECT \* FROM jobs WHERE id/.test(query)) n.fullReads++;
      return sql.exec(query, ...bindings);
    },
  } as unknown as SqlStorage;
  return { n, wrapped };
}

function insertJob(sql: SqlStorage, id: string): void {
  sql.exec(`DELETE FROM jobs WHERE id = ?`, id);
  sql.exec(
    `INSERT INTO jobs (id, request_id, model, kind, state, created_at, updated_at)
     VALUES (?, 'r', 'm', 'chat', 'queued', 0, 0)`,
    id,
  );
}

describe("job rows read once and kept while nothing writes them", () => {
  it("reading a job again without a write does not read its row again", async () => {
    const reads = await runInDurableObject(regionStub(appEnv, "weur"), (_obj, ctx) => {
      const { n, wrapped } = counting(ctx.storage.sql);
      insertJob(ctx.storage.sql, "job_rowcache_a");
      const jobs = new JobStore(wrapped);
      jobs.get("job_rowcache_a");
      jobs.get("job_rowcache_a");
      jobs.get("job_rowcache_a");
      jobs.delete("job_rowcache_a");
      return n.fullReads;
    });
    expect(reads).toBe(1);
  });

  it("a cached row is never stale after a write, a delta, a finish or an eviction", async () => {
    const seen = await runInDurableObject(regionStub(appEnv, "weur"), (_obj, ctx) => {
      const sql = ctx.storage.sql;
      const id = "job_rowcache_b";
      insertJob(sql, id);
      const jobs = new JobStore(sql);
      const out: unknown[] = [];
      const look = () => {
        const r = jobs.get(id);
        out.push(r ? [r.state, r.node_id, r.attempts, r.text, r.next_seq] : null);
      };
      look();
      jobs.assign(id, "tab_1");
      look();
      jobs.markStreaming(id);
      look();
      // Deltas go through the text layer (memory, then a batch written behind the store).
      expect(jobs.position(id, "tab_1")).toBeDefined();
      jobs.append(id, "Hello", 5);
      look();
      jobs.append(id, ", world", 7);
      jobs.texts.flushAll(); // the batch timer's write
      look();
      jobs.finish(id, "stop", { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
      look();
      // A returned row is a copy: changing it does not change what the next read returns.
      const copy = jobs.get(id);
      if (copy) copy.text = "changed by a caller";
      look();
      // storage-budget.ts evicts finished jobs with its own DELETE.
      sql.exec(`DELETE FROM jobs WHERE id = ?`, id);
      look();
      return out;
    });
    expect(seen).toEqual([
      ["queued", null, 0, "", 0],
      ["assigned", "tab_1", 1, "", 0],
      ["streaming", "tab_1", 1, "", 0],
      ["streaming", "tab_1", 1, "Hello", 1],
      ["streaming", "tab_1", 1, "Hello, world", 2],
      ["done", "tab_1", 1, "Hello, world", 2],
      ["done", "tab_1", 1, "Hello, world", 2],
      null,
    ]);
  });

  it("keeps no row whose spec and text would outgrow the cache's memory bound", async () => {
    const reads = await runInDurableObject(regionStub(appEnv, "weur"), (_obj, ctx) => {
      const { n, wrapped } = counting(ctx.storage.sql);
      const id = "job_rowcache_big";
      insertJob(ctx.storage.sql, id);
      // 4.5M characters of spec: more than the whole cache may hold (a Durable Object has 128 MB).
      ctx.storage.sql.exec(`UPDATE jobs SET spec = ? WHERE id = ?`, "x".repeat(4_500_000), id);
      const jobs = new JobStore(wrapped);
      const lengths = [jobs.get(id)?.spec.length, jobs.get(id)?.spec.length];
      jobs.delete(id);
      return { reads: n.fullReads, lengths };
    });
    expect(reads).toEqual({ reads: 2, lengths: [4_500_000, 4_500_000] });
  });

  it("the row kept after each write of this object equals the row SQLite holds", async () => {
    const out = await runInDurableObject(regionStub(appEnv, "weur"), (_obj, ctx) => {
      const sql = ctx.storage.sql;
      const { n, wrapped } = counting(sql);
      const id = "job_rowcache_same";
      sql.exec(`DELETE FROM jobs WHERE id = ?`, id);
      const jobs = new JobStore(wrapped);
      const spec = {
        id,
        model: "m",
        input: { kind: "chat", messages: [{ role: "user", content: "hi" }] },
        sampling: { max_tokens: 50 },
      } as unknown as Parameters<JobStore["create"]>[0];
      jobs.create(spec, {
        match: { clientLocation: null, promptTokens: 1, maxTokens: 50, stream: true },
        priority: 1,
        requestId: "req_same",
        owner: null,
        detachGraceMs: 0,
      });
      const diffs: string[] = [];
      const same = (step: string) => {
        // Flushes the pending batch first, as every read does; the waiting line as kept in memory.
        const kept = [jobs.get(id), jobs.waitingCount(), jobs.queued().map((r) => r.id)];
        const fresh = new JobStore(sql);
        const stored = [fresh.get(id), fresh.waitingCount(), fresh.queued().map((r) => r.id)];
        if (JSON.stringify(kept) !== JSON.stringify(stored)) {
          diffs.push(`${step}: ${JSON.stringify(kept)} != ${JSON.stringify(stored)}`);
        }
      };
      same("create");
      jobs.assign(id, "tab_1", 1234);
      same("assign");
      jobs.markStreaming(id);
      same("streaming");
      jobs.position(id, "tab_1");
      jobs.append(id, "Hé", 3);
      jobs.markFirstToken(id, 99);
      same("first delta");
      jobs.append(id, "llo", 3);
      jobs.texts.flushAll();
      jobs.append(id, " there", 6);
      same("batches");
      jobs.requeue(id, { code: "node_gone", message: "left" });
      same("requeue");
      jobs.assign(id, "tab_2");
      jobs.rested(id, "tab_2");
      jobs.reportedInvalid(id, "tab_1");
      same("second attempt");
      jobs.position(id, "tab_2");
      jobs.append(id, "!", 1);
      jobs.finish(id, "stop", { prompt_tokens: 1, completion_tokens: 4, total_tokens: 5 });
      same("finish");
      expect(jobs.fail(id, { code: "internal", message: "late" })).toBe(false);
      expect(jobs.cancel(id)).toBe(false);
      same("no-op after the end");
      const text = new JobStore(sql).get(id)?.text;
      const chunks = sql.exec(`SELECT count(*) AS n FROM job_chunks WHERE job_id = ?`, id).one().n;
      jobs.delete(id);
      return { diffs, reads: n.fullReads, text, chunks };
    });
    expect(out.diffs).toEqual([]);
    // Written by this store from its creation on: never read back.
    expect(out.reads).toBe(0);
    expect(out.text).toBe("Héllo there!");
    expect(out.chunks).toBe(0);
  });
});
