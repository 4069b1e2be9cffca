import type { TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";

/**
 * Verification health of one region, for the status API, the status page, /metrics and the audit
 * alert (docs/status.md). Read from the trust data the region already keeps — the evidence per
 * identity in `tab_reputation` (reputation.ts; rows are never deleted, so the sums only grow) and
 * the quarantines in `tab_trust` (tab-trust.ts) — never a row per request. Null when verification
 * is off in this region.
 */
export interface TrustHealth {
  /** Answer audits finished, since the region's verification began: passed and failed. */
  audits: { passed: number; failed: number };
  /** Canary jobs judged: passed and failed. */
  canaries: { passed: number; failed: number };
  /** Audits sampled and waiting for (or out with) a verifier. */
  auditsPending: number;
  /** Connected tabs that are quarantined now (they get no client jobs). */
  quarantinedTabs: number;
  /** Identities under quarantine, connected or not. */
  quarantinedIdentities: number;
}

export function trustHealth(sql: SqlStorage, tabs: TabRegistry, trust: TabTrust): TrustHealth {
  const e = sql
    .exec<{
      audits: number | null;
      failed: number | null;
      canaries: number | null;
      bad: number | null;
    }>(
      `SELECT sum(json_extract(evidence, '$.audits')) AS audits,
              sum(json_extract(evidence, '$.failedAudits')) AS failed,
              sum(json_extract(evidence, '$.canaries')) AS canaries,
              sum(json_extract(evidence, '$.failedCanaries')) AS bad
       FROM tab_reputation`,
    )
    .one();
  const pending = sql.exec<{ n: number }>(`SELECT count(*) AS n FROM audits`).one().n;
  const held = sql
    .exec<{ n: number }>(`SELECT count(*) AS n FROM tab_trust WHERE quarantined_at IS NOT NULL`)
    .one().n;
  let connected = 0;
  for (const tab of tabs.all()) if (trust.state(tab.tabId) === "quarantined") connected += 1;
  const audits = e.audits ?? 0;
  const failed = e.failed ?? 0;
  const canaries = e.canaries ?? 0;
  const bad = e.bad ?? 0;
  return {
    audits: { passed: audits - failed, failed },
    canaries: { passed: canaries - bad, failed: bad },
    auditsPending: pending,
    quarantinedTabs: connected,
    quarantinedIdentities: held,
  };
}
