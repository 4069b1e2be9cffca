import { log } from "../http/log.js";
import type { TabTrust } from "./tab-trust.js";
import { CANARY_PROMPTS } from "../../shared/trust/canary-prompts.js";
import { DEFAULT_TRUST, type TrustConfig, type TrustState } from "../../shared/trust/policy.js";
import {
  NO_EVIDENCE,
  addEvidence,
  type Evidence,
  type Judgement,
} from "../../shared/trust/reputation.js";
import {
  NO_ACCUSATIONS,
  awaitingConfirmation,
  bindingJudge,
  confirmationOf,
  failedChecksOf,
  isBindingVerifier,
  isDecisive,
  isDiscredited,
  type AccusationCounts,
  type Confirmation,
} from "../../shared/trust/binding.js";

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
  /**
   * Failed checks that were binding (shared/trust/binding.ts): from a trusted signed verifier or a
   * canary. Only binding evidence can quarantine.
   */
  bindingFailedChecks: number;
  /**
   * This identity's decisive accusations as a verifier, confirmed or contradicted by a second
   * binding verifier (accusations.ts). Contradicted ones can cost it its binding word.
   */
  accusations: AccusationCounts;
  reason: string | null;
}

/** Who gave a piece of evidence: a verifier's public id (null for a canary), and whether binding. */
export interface EvidenceSource {
  what: string;
  verifier: string | null;
  binding: boolean;
  /**
   * A binding verifier's decisive accusation, recorded as not binding until a second verifier
   * confirms it (accusations.ts): the verdict is suspect, saying so.
   */
  held?: boolean;
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

/** `e` less `taken`, no count below zero. */
function withoutEvidence(e: Evidence, taken: Partial<Evidence>): Evidence {
  const out = { ...e };
  for (const k of Object.keys(taken) as (keyof Evidence)[])
    out[k] = Math.max(0, out[k] - (taken[k] ?? 0));
  return out;
}

interface Entry {
  /** All evidence since the identity's start (or an operator's release). */
  evidence: Evidence;
  /** The binding part of `evidence` (shared/trust/binding.ts): it alone can quarantine. */
  binding: Evidence;
  carried: Carried;
  /** Its own decisive accusations as a verifier, confirmed or contradicted (accusations.ts). */
  accusations: AccusationCounts;
  /**
   * Operator releases so far: an accusation held against the tab names the count it was held
   * at, so one settled after a release — its evidence moved to `carried` — takes nothing out.
   */
  releases: number;
  state: TrustState;
  reason: string | null;
}

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
    const { evidence, carried, accusations, releases } = this.load(tabId);
    const next: Entry = {
      evidence: NO_EVIDENCE,
      binding: NO_EVIDENCE,
      carried: {
        audits: carried.audits + evidence.audits,
        failedAudits: carried.failedAudits + evidence.failedAudits,
        canaries: carried.canaries + evidence.canaries,
        failedChecks: carried.failedChecks + failedChecksOf(evidence),
      },
      // What it said of others' answers is not undone by a release of its own.
      accusations,
      releases: releases + 1,
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
      JSON.stringify({
        ...e.evidence,
        carried: e.carried,
        binding: e.binding,
        accusations: e.accusations,
        releases: e.releases,
      }),
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
      binding: NO_EVIDENCE,
      carried: NOTHING_CARRIED,
      accusations: NO_ACCUSATIONS,
      releases: 0,
      state: "probation",
      reason: null,
    };
    if (row) {
      // Evidence stored before binding accusations has no `binding` part: none of it binds; nor,
      // before confirmations, `accusations`: none was confirmed or contradicted.
      const { carried, binding, accusations, releases, ...stored } = JSON.parse(
        row.evidence,
      ) as Partial<Evidence> & {
        carried?: Carried;
        binding?: Partial<Evidence>;
        accusations?: Partial<AccusationCounts>;
        releases?: number;
      };
      entry = {
        evidence: { ...NO_EVIDENCE, ...stored },
        binding: { ...NO_EVIDENCE, ...binding },
        carried: { ...NOTHING_CARRIED, ...carried },
        accusations: { ...NO_ACCUSATIONS, ...accusations },
        releases: releases ?? 0,
        state: row.state as TrustState,
        reason: row.reason,
      };
    }
    this.cache.set(tabId, entry);
    return entry;
  }

  /** Operator releases of this identity so far (an accusation held against it names the count). */
  releasesOf(tabId: string): number {
    return this.load(tabId).releases;
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
    const { evidence: e, binding: b, carried: c, accusations, reason } = this.load(tabId);
    const state = this.stateOf(tabId);
    return {
      state,
      audits: c.audits + e.audits,
      failedAudits: c.failedAudits + e.failedAudits,
      failedChecks: c.failedChecks + failedChecksOf(e),
      canaries: c.canaries + e.canaries,
      bindingFailedChecks: failedChecksOf(b),
      accusations,
      reason: state === "quarantined" ? (reason ?? this.trust.view(tabId).reason ?? null) : reason,
    };
  }

  /** Audits of this identity's answers: passed (nothing implausible) and failed. */
  auditCounts(tabId: string): { passed: number; failed: number } {
    const { audits, failedAudits } = this.view(tabId);
    return { passed: audits - failedAudits, failed: failedAudits };
  }

  /**
   * Is this identity's word as a verifier binding now (shared/trust/binding.ts): signed, not
   * suspect or quarantined by the checks of its own answers, not discredited by its accusations?
   */
  isBinding(tabId: string): boolean {
    const { accusations } = this.load(tabId);
    const standing = { identity: tabId, state: this.stateOf(tabId), accusations };
    return isBindingVerifier(standing, this.settings.config);
  }

  /** Have its accusations been contradicted enough to cost it its word (and its verifier role)? */
  isDiscredited(tabId: string): boolean {
    return isDiscredited(this.load(tabId).accusations, this.settings.config);
  }

  /**
   * Would this evidence, if it were binding, decide a quarantine the identity's binding evidence
   * does not decide already? Never for a quarantined identity: nothing more rests on it.
   */
  wouldQuarantine(tabId: string, evidence: Partial<Evidence>): boolean {
    if (this.isQuarantined(tabId)) return false;
    return isDecisive(this.load(tabId).binding, evidence, this.settings.config);
  }

  /** What a second verifier's evidence on an accused answer says of the accusation. */
  confirmationOf(tabId: string, evidence: Partial<Evidence>): Confirmation {
    return confirmationOf(this.load(tabId).binding, evidence, this.settings.config);
  }

  /**
   * A verifier's accusation was confirmed or contradicted: counted on its identity (which may have
   * left), where `isBinding` reads it. Its own state is its answers' and does not change.
   */
  accused(tabId: string, publicId: string, outcome: "confirmed" | "contradicted"): void {
    const entry = this.load(tabId);
    const wasDiscredited = this.isDiscredited(tabId);
    const accusations = { ...entry.accusations, [outcome]: entry.accusations[outcome] + 1 };
    this.save(tabId, publicId, { ...entry, accusations });
    if (!wasDiscredited && this.isDiscredited(tabId))
      log("warn", "verifier lost its binding word: its accusations were contradicted", {
        tab: publicId,
        ...accusations,
      });
  }

  /**
   * Add evidence about an identity and judge it again; a verdict of quarantine goes to TabTrust.
   * Only binding evidence (`source.binding`: shared/trust/binding.ts) can make that verdict.
   */
  async record(
    tabId: string,
    publicId: string,
    evidence: Partial<Evidence>,
    source: EvidenceSource,
  ): Promise<Judgement> {
    const entry = this.load(tabId);
    const next = addEvidence(entry.evidence, evidence);
    const binding = source.binding ? addEvidence(entry.binding, evidence) : entry.binding;
    // A held accusation is not binding, and says what it waits for.
    const held = source.held ? addEvidence(entry.binding, evidence) : null;
    return this.judgeAgain(tabId, publicId, entry, next, binding, source, held);
  }

  /**
   * A held accusation settled by a second binding verifier's evidence on the same answer
   * (accusations.ts), which binds either way. Confirmed: the accusation's evidence (`held`),
   * recorded before as not binding, binds now — it is already in all evidence, so only the binding
   * part grows. Contradicted: it is taken out of all evidence — a framer's word left in would keep
   * the honest tab suspect, audited at the suspect rate and no verifier, for nothing. Void (its
   * accuser lost its binding word before a second verifier settled it, accusations.ts): taken out
   * likewise, with no second evidence. Only for an accusation held since the tab's last release
   * (`releasesOf`): after one, its evidence is no longer there to take out. Judged once.
   */
  async settle(
    tabId: string,
    publicId: string,
    outcome: "confirmed" | "contradicted" | "void",
    held: Partial<Evidence>,
    second: Partial<Evidence>,
    source: EvidenceSource,
  ): Promise<Judgement> {
    const entry = this.load(tabId);
    const all = outcome === "confirmed" ? entry.evidence : withoutEvidence(entry.evidence, held);
    const bound = outcome === "confirmed" ? addEvidence(entry.binding, held) : entry.binding;
    const next = addEvidence(all, second);
    return this.judgeAgain(tabId, publicId, entry, next, addEvidence(bound, second), source, null);
  }

  private async judgeAgain(
    tabId: string,
    publicId: string,
    entry: Entry,
    next: Evidence,
    binding: Evidence,
    source: EvidenceSource,
    held: Evidence | null,
  ): Promise<Judgement> {
    const c = this.settings.config;
    const quarantined = this.isQuarantined(tabId);
    const verdict: Judgement = quarantined
      ? { state: "quarantined", pValue: 0, reason: entry.reason }
      : held
        ? awaitingConfirmation(held, c)
        : bindingJudge(next, binding, c);
    this.save(tabId, publicId, {
      ...entry,
      evidence: next,
      binding,
      state: verdict.state,
      reason: verdict.reason,
    });
    log(
      verdict.state === "trusted" || verdict.state === "probation" ? "info" : "warn",
      "tab checked",
      {
        tab: publicId,
        source: source.what,
        // Who accused (or vouched), and whether its word can quarantine.
        verifier: source.verifier,
        binding: source.binding,
        ...(source.held ? { held: true } : {}),
        state: verdict.state,
        pValue: verdict.pValue,
        ...(verdict.reason ? { reason: verdict.reason } : {}),
      },
    );
    // TabTrust logs the quarantine and moves the tab's running job (JobMachine listens).
    if (verdict.state === "quarantined" && !quarantined) {
      await this.trust.quarantine(tabId, verdict.reason ?? "failed verification");
    }
    for (const listener of this.judged) listener(tabId);
    return verdict;
  }
}
