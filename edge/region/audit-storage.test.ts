import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { AUDIT_ALL, NO_CANARIES, auditRows, withTrust } from "../../test/workerd/trust-helpers.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { regionStub } from "./region-stub.js";

/**
 * Audits keep within their own share of a Region object's storage (storage-budget.ts
 * AUDIT_STORAGE_SHARE, audits.ts `makeRoom`), so however many wait — for a verifier that never
 * comes, or out with one that never answers — client jobs are still admitted. Before, audit
 * payloads counted against the jobs' budget and were never evicted: once they filled it, every
 * new job was refused with 429 queue_full.
 */

const { tab } = useTabs();

/** A prompt of 150 KB: twenty of its audits are more than the test budget (3 MB, vitest.config.ts). */
const PROMPT = "y".repeat(150_000);

/** Answers `n` requests (numbered from `from`) on `server`; the job ids, oldest first. */
async function fill(
  server: ScriptedTab,
  model: string,
  from: number,
  n: number,
): Promise<string[]> {
  const jobIds: string[] = [];
  for (let i = from; i < from + n; i++) {
    const res = chat(model, { messages: [{ role: "user", content: `${PROMPT}${i}` }] });
    const job = await Promise.race([server.nextJob(), res.then(() => null)]);
    if (job) {
      jobIds.push(job.id);
      server.serve(job, [`answer ${i}`]);
    }
    expect({ request: i, status: (await res).status }).toEqual({ request: i, status: 200 });
  }
  return jobIds;
}

describe("audit storage", () => {
  it("audits nobody answers never make the Region refuse a client's job: the oldest unsent go first", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const stub = regionStub(appEnv, "wnam");
    // The only tab of its model: every answer it writes is sampled and waits for a verifier.
    const server = await tab(["as-fill"]);
    const jobIds: string[] = [];
    for (let i = 0; i < 24; i++) {
      const res = chat("as-fill", { messages: [{ role: "user", content: `${PROMPT}${i}` }] });
      const job = await Promise.race([server.nextJob(), res.then(() => null)]);
      if (job) {
        jobIds.push(job.id);
        server.serve(job, [`answer ${i}`]);
      }
      expect({ request: i, status: (await res).status }).toEqual({ request: i, status: 200 });
      const usage = await stub.storageUsage();
      expect(usage.bytes).toBeLessThanOrEqual(usage.maxBytes);
    }
    const usage = await stub.storageUsage();
    expect(usage.auditBytes).toBeGreaterThan(0);
    expect(usage.auditBytes).toBeLessThanOrEqual(usage.auditMaxBytes);
    // The audits kept are the newest samples: the older ones were dropped to make room.
    const kept = (await auditRows("wnam", "as-fill")).map((r) => r.id);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept).toEqual(jobIds.slice(-kept.length).map((id) => `aud_${id}`));
  }, 60_000);

  it("an audit carrying an accusation is dropped after the plain samples", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const server = await tab(["as-accused"]);
    const [first] = await fill(server, "as-accused", 0, 1);
    // It waits for a second verifier to confirm an accusation (accusations.ts).
    const accusation = { verifier: "n_accuser", publicId: "accuser", evidence: { audits: 1 } };
    await runInDurableObject(regionStub(appEnv, "wnam"), (_obj, state) => {
      state.storage.sql.exec(
        `UPDATE audits SET accusation = ? WHERE id = ?`,
        JSON.stringify(accusation),
        `aud_${first}`,
      );
    });
    // Twenty more: the audits' share holds two or three such payloads at a time.
    const newer = await fill(server, "as-accused", 1, 20);
    const kept = (await auditRows("wnam", "as-accused")).map((r) => r.id);
    // Kept: the accused audit, and the newest plain samples; the older plain ones went first.
    expect(kept[0]).toBe(`aud_${first}`);
    const plain = kept.slice(1);
    expect(plain.length).toBeGreaterThan(0);
    expect(plain).toEqual(newer.slice(-plain.length).map((id) => `aud_${id}`));
  }, 60_000);
});
