import { runInDurableObject } from "cloudflare:test";
import type { RegionParts } from "../../edge/region/region-parts.js";
import { regionStub } from "../../edge/region/region-stub.js";
import type { RegionHint } from "../../shared/geo/regions.js";
import { DEFAULT_TRUST, type TrustConfig } from "../../shared/trust/policy.js";
import { appEnv } from "./tab-helpers.js";

/** Sampling rates that audit every finished job, whatever the tab's trust state. */
export const AUDIT_ALL = { auditRate: 1, probationAuditRate: 1, suspectAuditRate: 1 };
/** Rates that never send a canary. */
export const NO_CANARIES = { canaryRate: 0, probationCanaryRate: 0, suspectCanaryRate: 0 };
/** Rates that audit nothing and make every tab's next job a canary after each client job. */
export const CANARIES_ONLY = {
  auditRate: 0,
  probationAuditRate: 0,
  suspectAuditRate: 0,
  canaryRate: 1,
  probationCanaryRate: 1,
  suspectCanaryRate: 1,
};

/**
 * Turn answer verification on in one Region object (the edge tests run with TRUST=off), with the
 * default policy changed by `overrides` and, if given, its own canary prompts.
 */
export async function withTrust(
  region: RegionHint,
  overrides: Partial<TrustConfig>,
  prompts?: string[],
): Promise<void> {
  await runInDurableObject(regionStub(appEnv, region), (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    parts.reputation.settings = {
      enabled: true,
      config: { ...DEFAULT_TRUST, ...overrides },
      canaryPrompts: prompts ?? parts.reputation.settings.canaryPrompts,
    };
  });
}

/**
 * Put a signed tab's identity out of probation in both senses, as if it had finished
 * PROBATION_JOBS jobs and passed three audits: what a canary confirmer needs (canaries.ts).
 */
export async function pastProbation(region: RegionHint, tabId: string): Promise<void> {
  await runInDurableObject(regionStub(appEnv, region), async (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    for (let i = 0; i < parts.trust.policy.probationJobs; i++) parts.trust.jobDone(tabId);
    const publicId = parts.tabs.get(tabId)?.publicId ?? "";
    await parts.reputation.record(
      tabId,
      publicId,
      { audits: 3, tokens: 30 },
      "three passed audits",
    );
  });
}

/** The audits of answers for `model` a Region object holds: the verifier each is out with. */
export function auditRows(
  region: RegionHint,
  model: string,
): Promise<Array<{ id: string; verifier: string | null }>> {
  return runInDurableObject(regionStub(appEnv, region), (_obj, state) =>
    state.storage.sql
      .exec<{ id: string; verifier: string | null }>(
        `SELECT id, verifier FROM audits WHERE model = ? ORDER BY created_at`,
        model,
      )
      .toArray(),
  );
}

/** `promise`, or a failure saying `what` did not happen within `ms` (an event awaited, bounded). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
