import { log } from "../http/log.js";
import { CANARY_PROMPTS } from "../../shared/trust/canary-prompts.js";
import { DEFAULT_TRUST, type TrustConfig, type TrustState } from "../../shared/trust/policy.js";
import {
  NO_EVIDENCE,
  addEvidence,
  judge,
  type Evidence,
  type Judgement,
} from "../../shared/trust/reputation.js";

/**
 * Verification settings of a Region: the shared TrustConfig plus whether verification runs at
 * all and the canary prompt set. `TRUST=off` turns it off (the edge unit tests, whose scripted tabs
 * do not answer audits); `TRUST_CONFIG` (JSON) overrides fields of the defaults.
 */
export interface TrustSettings {
  enabled: boolean;
  config: TrustConfig;
  canaryPrompts: readonly string[];
}

export function trustSettings(env: { TRUST?: string; TRUST_CONFIG?: string }): TrustSettings {
  let overrides: Partial<TrustConfig> = {};
  try {
    overrides = env.TRUST_CONFIG ? (JSON.parse(env.TRUST_CONFIG) as Partial<TrustConfig>) : {};
  } catch {
    log("warn", "TRUST_CONFIG is not JSON; using the defaults");
  }
  return {
    enabled: env.TRUST !== "off",
    config: { ...DEFAULT_TRUST, ...overrides },
    canaryPrompts: CANARY_PROMPTS,
  };
}

/** What GET /v1/nodes may show of a tab's trust (no evidence details beyond counts). */
export interface TrustView {
  state: TrustState;
  audits: number;
  failedChecks: number;
  canaries: number;
  reason: string | null;
}

interface TrustRow extends Record<string, SqlStorageValue> {
  node_id: string;
  public_id: string;
  evidence: string;
  state: string;
  reason: string | null;
  quarantined_at: number | null;
}

/**
 * Per-identity reputation, persisted in `tab_trust` (keyed by the tab's id, i.e. its proven
 * public key, so it survives reconnects). Evidence comes from audits (audits.ts) and canaries
 * (canaries.ts); shared/trust/reputation.ts judges it. Quarantine is sticky: a quarantined identity
 * gets no client jobs, its running job fails over, it earns no credit; everything is logged with
 * its public id and the reason.
 */
export class Reputation {
  private readonly cache = new Map<
    string,
    { evidence: Evidence; state: TrustState; reason: string | null }
  >();
  /** Identities quarantined since the job machine last asked (it moves their jobs). */
  private fresh: string[] = [];

  constructor(
    private readonly sql: SqlStorage,
    public settings: TrustSettings,
  ) {}

  /** Identities newly quarantined, once each (the job machine fails their running jobs over). */
  takeQuarantined(): string[] {
    return this.fresh.splice(0);
  }

  private load(tabId: string) {
    const hit = this.cache.get(tabId);
    if (hit) return hit;
    const row = this.sql
      .exec<TrustRow>(`SELECT * FROM tab_trust WHERE node_id = ?`, tabId)
      .toArray()[0];
    const entry = row
      ? {
          evidence: { ...NO_EVIDENCE, ...(JSON.parse(row.evidence) as Partial<Evidence>) },
          state: row.state as TrustState,
          reason: row.reason,
        }
      : { evidence: NO_EVIDENCE, state: "probation" as TrustState, reason: null };
    this.cache.set(tabId, entry);
    return entry;
  }

  stateOf(tabId: string): TrustState {
    return this.load(tabId).state;
  }

  isQuarantined(tabId: string): boolean {
    return this.settings.enabled && this.load(tabId).state === "quarantined";
  }

  view(tabId: string): TrustView {
    const { evidence: e, state, reason } = this.load(tabId);
    return {
      state,
      audits: e.audits,
      failedChecks: e.badStops + e.failedCanaries + (e.implausible > 0 ? 1 : 0),
      canaries: e.canaries,
      reason,
    };
  }

  /** Add evidence about an identity and judge it again. */
  record(tabId: string, publicId: string, evidence: Partial<Evidence>, source: string): Judgement {
    const entry = this.load(tabId);
    const next = addEvidence(entry.evidence, evidence);
    const verdict: Judgement =
      entry.state === "quarantined"
        ? { state: "quarantined", pValue: 0, reason: entry.reason }
        : judge(next, this.settings.config);
    const newly = verdict.state === "quarantined" && entry.state !== "quarantined";
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO tab_trust (node_id, public_id, evidence, state, reason, quarantined_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(node_id) DO UPDATE SET evidence = excluded.evidence, state = excluded.state,
         reason = excluded.reason, quarantined_at = COALESCE(tab_trust.quarantined_at, excluded.quarantined_at),
         updated_at = excluded.updated_at`,
      tabId,
      publicId,
      JSON.stringify(next),
      verdict.state,
      verdict.reason,
      newly ? now : null,
      now,
    );
    this.cache.set(tabId, { evidence: next, state: verdict.state, reason: verdict.reason });
    log(
      verdict.state === "trusted" || verdict.state === "probation" ? "info" : "warn",
      "tab checked",
      {
        tab: publicId,
        source,
        state: verdict.state,
        pValue: verdict.pValue,
        ...(verdict.reason ? { reason: verdict.reason } : {}),
      },
    );
    if (newly) {
      log("warn", "tab quarantined", { tab: publicId, reason: verdict.reason });
      this.fresh.push(tabId);
    }
    return verdict;
  }
}
