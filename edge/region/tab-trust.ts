import { log } from "../http/log.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import { isAnonymous } from "../../shared/trust/anonymous.js";

/**
 * What the Region knows about each contributor identity (the tab id, derived from its public key),
 * kept in SQLite so it survives reconnects: credit earned, jobs finished, faults, and its trust
 * state. A new identity starts on probation; it becomes trusted after `probationJobs` finished jobs
 * with few faults; anyone (the answer audits in audit*.ts, an operator) may quarantine it.
 * Anonymous tabs (`a_…`, no key) are one connection long: their rows go when they leave.
 */
export type TrustState = "probation" | "trusted" | "quarantined";

/** The public view, as GET /v1/nodes shows it under `trust`. */
export interface TrustView {
  state: TrustState;
  /** Jobs this identity finished for clients. */
  jobs: number;
  /** Things it did that the coordinator rejected (errors, overlong answers, inflated usage, …). */
  faults: number;
  /** Why it was quarantined, and since when (ms since the epoch), when it was. */
  reason?: string;
  quarantinedAt?: number;
  /**
   * Answer audits of this identity (reputation.ts): passed, and failed (at least one re-scored
   * token or the stop implausible; quarantine follows the test over all evidence, not one audit).
   */
  audits?: { passed: number; failed: number };
  /**
   * Its decisive accusations as a verifier that a second verifier confirmed or contradicted
   * (accusations.ts); contradicted ones can cost it its binding word.
   */
  accusations?: { confirmed: number; contradicted: number };
}

export interface TrustPolicy {
  /** Finished jobs before an identity leaves probation. */
  probationJobs: number;
  /** Share of new requests a tab on probation may take while a trusted tab could (0–1). */
  probationShare: number;
}

interface TrustRow extends Record<string, SqlStorageValue> {
  identity: string;
  credits: number;
  jobs: number;
  faults: number;
  quarantined_at: number | null;
  reason: string | null;
}

/** Most faults per finished job a trusted identity may have (more puts it back on probation). */
const TRUSTED_FAULT_RATIO = 0.2;

/**
 * Rows kept in memory at most (identities of connected tabs, in practice): past it the cache starts
 * afresh, so a flood of identities costs reads, never memory.
 */
const MAX_CACHED_ROWS = 4096;

export class TabTrust {
  private readonly listeners: Array<(tabId: string, reason: string) => Promise<void> | void> = [];
  private readonly releaseListeners: Array<(tabId: string) => Promise<void> | void> = [];
  readonly rejections = new RejectLog();
  /**
   * Each identity's row as last read (undefined: no row), so the matcher's probation filter, which
   * asks the state of every candidate tab on every request, reads SQLite once per identity instead
   * of once per tab per request. Every write to `tab_trust` is a method of this class and drops the
   * identity's entry first; nothing else writes the table after start-up (sql-schema.ts), and the
   * Region object does not roll writes back (no transactions), so an entry is never stale.
   */
  private readonly cache = new Map<string, TrustRow | undefined>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly tabs: TabRegistry,
    readonly policy: TrustPolicy,
  ) {}

  /** Make sure the identity has a row (called at hello). */
  seen(identity: string): void {
    this.cache.delete(identity);
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO tab_trust (identity, first_seen, last_seen) VALUES (?, ?, ?)
       ON CONFLICT(identity) DO UPDATE SET last_seen = excluded.last_seen`,
      identity,
      now,
      now,
    );
  }

  /** An anonymous identity cannot come back: forget it when its tab leaves. */
  left(identity: string): void {
    if (isAnonymous(identity)) {
      this.cache.delete(identity);
      this.sql.exec(`DELETE FROM tab_trust WHERE identity = ?`, identity);
    }
  }

  /** After eviction: anonymous rows whose tab did not survive can never be used again. */
  pruneAnonymous(): void {
    const live = new Set([...this.tabs.all()].map((t) => t.tabId));
    const rows = this.sql
      .exec<{ identity: string }>(
        `SELECT identity FROM tab_trust WHERE substr(identity, 1, 2) = 'a_'`,
      )
      .toArray();
    for (const { identity } of rows) if (!live.has(identity)) this.left(identity);
  }

  view(identity: string): TrustView {
    const row = this.row(identity);
    if (!row) return { state: "probation", jobs: 0, faults: 0 };
    return {
      state: stateOf(row, this.policy),
      jobs: row.jobs,
      faults: row.faults,
      ...(row.quarantined_at !== null
        ? { reason: row.reason ?? "", quarantinedAt: row.quarantined_at }
        : {}),
    };
  }

  state(identity: string): TrustState {
    return this.view(identity).state;
  }

  credits(identity: string): number {
    return this.row(identity)?.credits ?? 0;
  }

  /** A job finished on this identity's tab. */
  jobDone(identity: string): void {
    this.cache.delete(identity);
    this.sql.exec(`UPDATE tab_trust SET jobs = jobs + 1 WHERE identity = ?`, identity);
  }

  /**
   * Credit the ledger took back (a count confirmed inflated: edge/credits/take-backs.ts): the
   * figure falls by as much, never below 0, as the ledger's balance does.
   */
  takeCredit(identity: string, credit: number): void {
    this.cache.delete(identity);
    this.sql.exec(
      `UPDATE tab_trust SET credits = max(0, credits - ?) WHERE identity = ?`,
      credit,
      identity,
    );
  }

  /** Credit earned for a job; withheld (0) while quarantined. Returns what was credited. */
  addCredit(identity: string, credit: number): number {
    if (this.state(identity) === "quarantined") return 0;
    this.cache.delete(identity);
    this.sql.exec(
      `UPDATE tab_trust SET credits = credits + ? WHERE identity = ?`,
      credit,
      identity,
    );
    return credit;
  }

  /** Something the tab did that the coordinator rejected: counted, and logged (bounded). */
  fault(tab: Pick<TabRecord, "tabId" | "publicId">, reason: string, detail: object = {}): void {
    this.cache.delete(tab.tabId);
    this.sql.exec(`UPDATE tab_trust SET faults = faults + 1 WHERE identity = ?`, tab.tabId);
    this.rejections.note(tab.publicId, reason, detail);
  }

  /**
   * Quarantine an identity (or a connected tab named by its id or public id): it gets no more
   * client jobs, its running job moves to another tab, its credit is withheld. Listeners (the job
   * state machine) do the moving.
   */
  async quarantine(tabIdOrIdentity: string, reason: string): Promise<void> {
    const identity = this.resolve(tabIdOrIdentity);
    this.seen(identity);
    this.cache.delete(identity);
    this.sql.exec(
      `UPDATE tab_trust SET quarantined_at = ?, reason = ? WHERE identity = ?`,
      Date.now(),
      reason.slice(0, 500),
      identity,
    );
    const tab = this.tabs.get(identity);
    log("warn", "tab quarantined", { tab: tab?.publicId ?? null, reason });
    for (const listener of this.listeners) await listener(identity, reason);
  }

  /**
   * Lift a quarantine (an operator's decision). Listeners put the tab back into matching and start
   * its evidence afresh (reputation.ts).
   */
  async release(tabIdOrIdentity: string): Promise<void> {
    const identity = this.resolve(tabIdOrIdentity);
    this.cache.delete(identity);
    this.sql.exec(
      `UPDATE tab_trust SET quarantined_at = NULL, reason = NULL WHERE identity = ?`,
      identity,
    );
    log("info", "tab released from quarantine", { tab: this.tabs.get(identity)?.publicId ?? null });
    for (const listener of this.releaseListeners) await listener(identity);
  }

  onRelease(listener: (tabId: string) => Promise<void> | void): void {
    this.releaseListeners.push(listener);
  }

  onQuarantine(listener: (tabId: string, reason: string) => Promise<void> | void): void {
    this.listeners.push(listener);
  }

  private resolve(idOrPublicId: string): string {
    if (this.tabs.get(idOrPublicId)) return idOrPublicId;
    for (const tab of this.tabs.all()) if (tab.publicId === idOrPublicId) return tab.tabId;
    return idOrPublicId;
  }

  private row(identity: string): TrustRow | undefined {
    if (this.cache.has(identity)) return this.cache.get(identity);
    const row = this.sql
      .exec<TrustRow>(
        `SELECT identity, credits, jobs, faults, quarantined_at, reason FROM tab_trust WHERE identity = ?`,
        identity,
      )
      .toArray()[0];
    if (this.cache.size >= MAX_CACHED_ROWS) this.cache.clear();
    this.cache.set(identity, row);
    return row;
  }
}

function stateOf(row: TrustRow, policy: TrustPolicy): TrustState {
  if (row.quarantined_at !== null) return "quarantined";
  if (row.jobs >= policy.probationJobs && row.faults <= row.jobs * TRUSTED_FAULT_RATIO) {
    return "trusted";
  }
  return "probation";
}

/**
 * Log lines for what the coordinator rejects from tabs, bounded: at most `perTab` lines per tab
 * and `total` lines overall per window; what is held back is counted and reported with the next
 * line that gets through, so a tab flooding bogus frames cannot flood the logs.
 */
export class RejectLog {
  private windowStart = 0;
  private total = 0;
  private readonly perTabCount = new Map<string, number>();
  private suppressed = 0;

  constructor(
    private readonly perTab = 10,
    private readonly totalPerWindow = 200,
    private readonly windowMs = 60_000,
  ) {}

  note(publicId: string | null, reason: string, detail: object = {}): boolean {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.total = 0;
      this.perTabCount.clear();
    }
    const key = publicId ?? "(unregistered)";
    const mine = this.perTabCount.get(key) ?? 0;
    if (mine >= this.perTab || this.total >= this.totalPerWindow) {
      this.suppressed += 1;
      return false;
    }
    this.perTabCount.set(key, mine + 1);
    this.total += 1;
    const held = this.suppressed;
    this.suppressed = 0;
    log("warn", "tab rejected", {
      tab: publicId,
      reason,
      ...detail,
      ...(held > 0 ? { suppressedSinceLastLine: held } : {}),
    });
    return true;
  }
}
