import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";
import { TabRegistry } from "./tab-registry.js";
import { TabTrust, type TrustView } from "./tab-trust.js";

/** A Region object's real SQLite, with the reads of trust rows counted. */
function counting(sql: SqlStorage) {
  const n = { reads: 0 };
  const wrapped = {
    exec: (query: string, ...bindings: unknown[]) => {
      if (/^SELECT .* FROM tab_trust WHERE identity = \?$/.test(query)) n.reads++;
      return sql.exec(query, ...bindings);
    },
  } as unknown as SqlStorage;
  return { n, wrapped };
}

const policy = { probationJobs: 2, probationShare: 0.5 };

describe("trust rows read once per identity and kept while nothing writes them", () => {
  it("asking the state of the same tabs on every request reads each row once", async () => {
    const reads = await runInDurableObject(regionStub(appEnv, "weur"), (_obj, ctx) => {
      const { n, wrapped } = counting(ctx.storage.sql);
      const trust = new TabTrust(wrapped, new TabRegistry(ctx.storage.sql), policy);
      const ids = ["t_cache_1", "t_cache_2", "t_cache_3"];
      for (const id of ids) trust.seen(id);
      // What the matcher's probation filter does: every candidate, on each of 20 requests.
      for (let request = 0; request < 20; request++) for (const id of ids) trust.state(id);
      return n.reads;
    });
    expect(reads).toBe(3);
  });

  it("a cached row is never stale after a finished job, a fault, credit, quarantine, release or leaving", async () => {
    const seen = await runInDurableObject(regionStub(appEnv, "weur"), async (_obj, ctx) => {
      const sql = ctx.storage.sql;
      const trust = new TabTrust(sql, new TabRegistry(sql), policy);
      const id = "t_cache_stale";
      const anon = "a_cache_stale";
      const out: Array<[TrustView, number]> = [];
      const look = (who = id) => out.push([trust.view(who), trust.credits(who)]);
      look(); // no row yet
      trust.seen(id);
      look();
      trust.jobDone(id);
      look();
      trust.jobDone(id);
      look(); // trusted: 2 jobs, no fault
      trust.fault({ tabId: id, publicId: "p_cache_stale" }, "test fault");
      look(); // still trusted: 1 fault per 2 jobs is over 0.2 → probation
      trust.addCredit(id, 5);
      look();
      await trust.quarantine(id, "audit failed");
      look();
      expect(trust.addCredit(id, 5)).toBe(0);
      await trust.release(id);
      look();
      trust.seen(anon);
      trust.jobDone(anon);
      look(anon);
      trust.left(anon);
      look(anon);
      return out.map(([v, credits]) => [v.state, v.jobs, v.faults, v.reason ?? null, credits]);
    });
    expect(seen).toEqual([
      ["probation", 0, 0, null, 0],
      ["probation", 0, 0, null, 0],
      ["probation", 1, 0, null, 0],
      ["trusted", 2, 0, null, 0],
      ["probation", 2, 1, null, 0],
      ["probation", 2, 1, null, 5],
      ["quarantined", 2, 1, "audit failed", 5],
      ["probation", 2, 1, null, 5],
      ["probation", 1, 0, null, 0],
      ["probation", 0, 0, null, 0],
    ]);
  });
});
