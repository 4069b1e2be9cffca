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
