import { describe, expect, it } from "vitest";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { AUDIT_ALL, NO_CANARIES, auditRows, withTrust } from "../../test/workerd/trust-helpers.js";
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
});
