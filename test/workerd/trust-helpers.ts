import { runInDurableObject } from "cloudflare:test";
import type { RegionParts } from "../../edge/region/region-parts.js";
import type { ReputationView } from "../../edge/region/reputation.js";
import { regionStub } from "../../edge/region/region-stub.js";
import type { RegionHint } from "../../shared/geo/regions.js";
import { DEFAULT_TRUST, type TrustConfig } from "../../shared/trust/policy.js";
import type { Evidence } from "../../shared/trust/reputation.js";
import { nodeIdFromPublicKey } from "../../shared/protocol/node-identity.js";
import { newKeyPair, type ScriptedTab } from "./scripted-tab.js";
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
      { what: "three passed audits", verifier: null, binding: true },
    );
  });
}

/**
 * A signed tab whose identity is trusted in TabTrust before it connects, as if it had finished
 * PROBATION_JOBS client jobs earlier: a binding verifier (shared/trust/binding.ts) from its first
 * answer, whose failing audits can quarantine. (Made trusted before its hello, so no audit reaches
 * it while it is still on probation.) `open` is `useTabs().tab`; `where.region` the Region object
 * the tab lands on (by `where.loc`); `where.keys` its key pair (to reconnect it later), else new.
 */
export async function bindingTab(
  open: (
    models: string[],
    opts: { keys: CryptoKeyPair; loc?: { lat: number; lon: number } },
  ) => Promise<ScriptedTab>,
  models: string[],
  where: { region?: RegionHint; loc?: { lat: number; lon: number }; keys?: CryptoKeyPair } = {},
): Promise<ScriptedTab> {
  const region = where.region ?? "wnam";
  const keys = where.keys ?? (await newKeyPair());
  const spki = new Uint8Array(
    (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer,
  );
  const id = await nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d));
  await runInDurableObject(regionStub(appEnv, region), (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    parts.trust.seen(id);
    for (let i = 0; i < parts.trust.policy.probationJobs; i++) parts.trust.jobDone(id);
  });
  const t = await open(models, { keys, ...(where.loc ? { loc: where.loc } : {}) });
  if (t.nodeId !== id) throw new Error("the tab's identity is not its key's");
  return t;
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

/**
 * Read `read()` until `ok` holds or `ms` pass, and return the last value (the caller asserts on it,
 * so a timeout fails with what was seen). For state the Region changes on frames the test cannot
 * await, such as a verdict after an audit result.
 */
export async function waitFor<T>(
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 4000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What the Region of `wnam` holds against a tab: its faults and the client jobs it finished. */
export function faultsAndJobs(t: ScriptedTab): Promise<{ faults: number; jobs: number }> {
  return runInDurableObject(regionStub(appEnv, "wnam"), (obj) => {
    const { faults, jobs } = (obj as unknown as { parts: RegionParts }).parts.trust.view(t.nodeId);
    return { faults, jobs };
  });
}

/** Wait until the Region of `wnam` no longer holds `t` (closed: its leaving was handled). */
export async function gone(t: ScriptedTab): Promise<void> {
  t.close();
  const held = await waitFor(
    () =>
      runInDurableObject(regionStub(appEnv, "wnam"), (obj) =>
        Boolean((obj as unknown as { parts: RegionParts }).parts.tabs.get(t.nodeId)),
      ),
    (v) => !v,
  );
  if (held) throw new Error("the tab's leaving was not handled in time");
}

/** What a Region's Reputation holds about an identity (state, audits, canaries, accusations). */
export function reputationOf(tabId: string, region: RegionHint = "wnam"): Promise<ReputationView> {
  return runInDurableObject(regionStub(appEnv, region), (obj) =>
    (obj as unknown as { parts: RegionParts }).parts.reputation.view(tabId),
  );
}

/** An identity's standing in a Region: its evidence (and the binding part), state and faults. */
export interface Standing {
  evidence: Evidence;
  binding: Evidence;
  state: string;
  reason: string | null;
  faults: number;
  /** Its decisive accusations as a verifier that a second verifier confirmed. */
  confirmed: number;
}

/**
 * The identity's evidence as the Region holds it (and its binding part), its faults, and its
 * decisive accusations as a verifier confirmed.
 */
export function standing(tabId: string, region: RegionHint = "wnam"): Promise<Standing> {
  return runInDurableObject(regionStub(appEnv, region), (obj, state) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    const row = state.storage.sql
      .exec<{ evidence: string }>(`SELECT evidence FROM tab_reputation WHERE node_id = ?`, tabId)
      .toArray()[0];
    const view = parts.reputation.view(tabId);
    const evidence = JSON.parse(row?.evidence ?? "{}") as Evidence & { binding?: Evidence };
    return {
      evidence,
      binding: evidence.binding ?? ({} as Evidence),
      state: view.state,
      reason: view.reason,
      faults: parts.trust.view(tabId).faults,
      confirmed: view.accusations.confirmed,
    };
  });
}
