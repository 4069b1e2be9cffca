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
