import { log } from "../http/log.js";
import type { TabTrust } from "./tab-trust.js";
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

/** What verification knows of a tab (tests, the bench); GET /v1/nodes shows `auditCounts`. */
export interface ReputationView {
  state: TrustState;
  audits: number;
  failedAudits: number;
  failedChecks: number;
  canaries: number;
  reason: string | null;
}

interface ReputationRow extends Record<string, SqlStorageValue> {
  node_id: string;
  public_id: string;
  evidence: string;
  state: string;
  reason: string | null;
}

/**
 * Per-identity evidence from audits (audits.ts) and canaries (canaries.ts), persisted in
 * `tab_reputation` (keyed by the tab's id, i.e. its proven public key, so it survives reconnects);
 * shared/trust/reputation.ts judges it. The statistical state (probation, trusted, suspect) sets how
 * often a tab is checked. A verdict of quarantine goes to TabTrust (tab-trust.ts), which owns
 * quarantine: no client jobs, the running job moves, credit withheld, shown in GET /v1/nodes.
 * An operator's release lifts the quarantine, not the evidence: the next check judges it again.
 */
/** Checks made before an operator's release: still shown, no longer judged. */
interface Carried {
  audits: number;
  failedAudits: number;
  canaries: number;
  failedChecks: number;
}
const NOTHING_CARRIED: Carried = { audits: 0, failedAudits: 0, canaries: 0, failedChecks: 0 };

interface Entry {
  evidence: Evidence;
  carried: Carried;
  state: TrustState;
  reason: string | null;
}

const failedChecksOf = (e: Evidence) =>
  e.badStops +
  e.failedCanaries +
  e.inflatedCounts +
  (e.implausible > 0 ? 1 : 0) +
  (e.farVectors > 0 ? 1 : 0);

export class Reputation {
  private readonly cache = new Map<string, Entry>();

  private readonly judged: Array<(tabId: string) => void> = [];

  constructor(
    private readonly sql: SqlStorage,
    private readonly trust: TabTrust,
    public settings: TrustSettings,
  ) {
    trust.onRelease((tabId) => this.released(tabId));
  }

  /**
   * An operator lifted the quarantine: the evidence that led to it is not judged again (else the
   * first check after the release would quarantine the tab anew on its old answers, whatever it
   * answers now). It is kept as shown history; the test starts afresh, as for a new identity, and
   * the tab is checked as often as a suspect one until its new evidence is judged.
   */
  private released(tabId: string): void {
    const { evidence, carried } = this.load(tabId);
    const next: Entry = {
      evidence: NO_EVIDENCE,
      carried: {
        audits: carried.audits + evidence.audits,
        failedAudits: carried.failedAudits + evidence.failedAudits,
        canaries: carried.canaries + evidence.canaries,
        failedChecks: carried.failedChecks + failedChecksOf(evidence),
      },
      // Checked as often as a suspect tab until its new evidence is judged.
      state: "suspect",
      reason: null,
    };
    this.save(tabId, null, next);
    log("info", "tab evidence restarted after a release", { tabId: tabId.slice(0, 12) });
  }

  private save(tabId: string, publicId: string | null, e: Entry): void {
    this.sql.exec(
      `INSERT INTO tab_reputation (node_id, public_id, evidence, state, reason, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(node_id) DO UPDATE SET evidence = excluded.evidence, state = excluded.state,
         reason = excluded.reason, updated_at = excluded.updated_at`,
      tabId,
      publicId ?? "",
      JSON.stringify({ ...e.evidence, carried: e.carried }),
      e.state,
      e.reason,
      Date.now(),
    );
    this.cache.set(tabId, e);
  }

  /** Hear about every new piece of evidence on an identity (its audit counts may have changed). */
  onJudged(listener: (tabId: string) => void): void {
    this.judged.push(listener);
  }

  private load(tabId: string) {
    const hit = this.cache.get(tabId);
    if (hit) return hit;
    const row = this.sql
      .exec<ReputationRow>(`SELECT * FROM tab_reputation WHERE node_id = ?`, tabId)
      .toArray()[0];
    let entry: Entry = {
      evidence: NO_EVIDENCE,
      carried: NOTHING_CARRIED,
      state: "probation",
      reason: null,
    };
    if (row) {
      const { carried, ...stored } = JSON.parse(row.evidence) as Partial<Evidence> & {
        carried?: Carried;
      };
      entry = {
        evidence: { ...NO_EVIDENCE, ...stored },
        carried: { ...NOTHING_CARRIED, ...carried },
        state: row.state as TrustState,
        reason: row.reason,
      };
    }
    this.cache.set(tabId, entry);
    return entry;
  }

  /** Quarantined (by any cause: verification, an operator) as TabTrust records it. */
  isQuarantined(tabId: string): boolean {
    return this.trust.state(tabId) === "quarantined";
  }

  /** The state that sets how often a tab is checked, and whether it may verify others. */
  stateOf(tabId: string): TrustState {
    if (this.isQuarantined(tabId)) return "quarantined";
    const { state } = this.load(tabId);
    // Released by an operator after a verdict: checked as often as a suspect tab.
    return state === "quarantined" ? "suspect" : state;
  }

  view(tabId: string): ReputationView {
    const { evidence: e, carried: c, reason } = this.load(tabId);
    const state = this.stateOf(tabId);
    return {
      state,
      audits: c.audits + e.audits,
      failedAudits: c.failedAudits + e.failedAudits,
      failedChecks: c.failedChecks + failedChecksOf(e),
      canaries: c.canaries + e.canaries,
      reason: state === "quarantined" ? (reason ?? this.trust.view(tabId).reason ?? null) : reason,
    };
  }

  /** Audits of this identity's answers: passed (nothing implausible) and failed. */
  auditCounts(tabId: string): { passed: number; failed: number } {
    const { audits, failedAudits } = this.view(tabId);
    return { passed: audits - failedAudits, failed: failedAudits };
  }

  /** Add evidence about an identity and judge it again; a verdict of quarantine goes to TabTrust. */
  async record(
    tabId: string,
    publicId: string,
    evidence: Partial<Evidence>,
    source: string,
  ): Promise<Judgement> {
    const entry = this.load(tabId);
    const next = addEvidence(entry.evidence, evidence);
    const held = this.isQuarantined(tabId);
    const verdict: Judgement = held
      ? { state: "quarantined", pValue: 0, reason: entry.reason }
      : judge(next, this.settings.config);
    this.save(tabId, publicId, {
      evidence: next,
      carried: entry.carried,
      state: verdict.state,
      reason: verdict.reason,
    });
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
    // TabTrust logs the quarantine and moves the tab's running job (JobMachine listens).
    if (verdict.state === "quarantined" && !held) {
      await this.trust.quarantine(tabId, verdict.reason ?? "failed verification");
    }
    for (const listener of this.judged) listener(tabId);
    return verdict;
  }
}
