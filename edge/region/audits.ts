import { log } from "../http/log.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import { auditDeadlineMs, jobSeed, mayScoreOnCpu, shouldAudit } from "../../shared/trust/policy.js";
import { auditEvidence } from "../../shared/trust/reputation.js";
import type { JobStore } from "./job-store.js";
import type { Placement } from "./placement.js";
import { auditTimer, type RegionTimer } from "./region-timers.js";
import type { Reputation } from "./reputation.js";
import type { TabChannel } from "./tab-channel.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";
import { MAX_TOKEN_BYTES, cutToBytes, utf8Bytes } from "./usage-bounds.js";

type AuditResult = Extract<TabMessage, { type: "audit.result" }>;

export interface AuditsDeps {
  sql: SqlStorage;
  jobs: JobStore;
  tabs: TabRegistry;
  channel: TabChannel;
  placement: Placement;
  reputation: Reputation;
  /** A verifier that lets an audit's deadline pass is at fault. */
  trust: TabTrust;
  timers: TimerTable<RegionTimer>;
  /** Most bytes of payloads the audits may hold (storage-budget.ts `auditStorageBytes`). */
  maxBytes: number;
}

interface AuditRow extends Record<string, SqlStorageValue> {
  id: string;
  subject: string;
  subject_public: string;
  subject_class: string | null;
  verifier: string | null;
  model: string;
  payload: string;
  created_at: number;
  sent_at: number | null;
  /** Verifiers that let this audit's deadline pass (JSON array of tab ids): not asked again. */
  missed: string;
  returned_at: number | null;
}

/**
 * An audit not given to a verifier within this time of being sampled (or handed back) is dropped
 * (a missed sample, logged).
 */
const AUDIT_TTL_MS = 5 * 60_000;

/**
 * Audits of finished answers (docs/trust.md): a keyed sample of finished jobs — more for tabs on
 * probation or suspect — is re-scored by a second tab serving the same model, preferably of
 * another GPU class and trusted, only while it is idle and no client job waits (clients first). The
 * verifier's log-probs become evidence about the tab that answered (reputation.ts). Audits live in
 * SQLite (`audits`) until their result arrives, within their own share of the storage budget. A
 * verifier holds one audit at a time, until its result for that audit arrives, it leaves, or the
 * audit's deadline passes (then the audit goes to another verifier and the silent one is at
 * fault): saying it is idle, or answering for another audit id, frees nothing.
 */
export class Audits {
  constructor(private readonly d: AuditsDeps) {}

  /** A client job finished on `tab`: maybe sample it for an audit, then give out waiting audits. */
  afterJob(tab: TabRecord, jobId: string): void {
    const { reputation, jobs, sql } = this.d;
    if (!reputation.settings.enabled) return;
    const row = jobs.get(jobId);
    // Only answers wholly written by this tab (a failover's text has several authors).
    if (!row || row.state !== "done" || row.attempt_start_chars !== 0) return;
    const spec: JobSpec = jobs.spec(row);
    // An embedding answer is vectors, not text to re-score.
    if (spec.input.kind === "embedding") return;
    const c = reputation.settings.config;
    if (!shouldAudit(c, jobId, reputation.stateOf(tab.tabId), spec.sampling.temperature)) return;
    // The verifier scores the first maxAuditTokens tokens, which lie within this many bytes (no
    // token is longer than MAX_TOKEN_BYTES): the rest of the answer is not stored.
    const answer = cutToBytes(row.text, c.maxAuditTokens * MAX_TOKEN_BYTES);
    const audit: Omit<AuditAssign, "type" | "auditId"> = {
      model: row.model,
      input: spec.input,
      sampling: spec.sampling,
      answer,
      seed: jobSeed(c, `audit:${jobId}`),
      // The end of the answer says something only when the model itself chose to stop there (and
      // the verifier is given the whole answer).
      scoreStop:
        row.finish_reason === "stop" &&
        answer === row.text &&
        !spec.sampling.stop?.length &&
        !spec.sampling.constraint,
      maxTokens: c.maxAuditTokens,
    };
    // An empty answer has no token to score, but its stop can be: right after the prompt, the
    // model finds stopping unlikely unless nothing is the answer (docs/trust.md).
    if (!answer && !audit.scoreStop) return;
    const payload = JSON.stringify(audit);
    if (!this.makeRoom(utf8Bytes(payload))) {
      log("info", "job not audited: no room for its audit", { jobId, tab: tab.publicId });
      return;
    }
    sql.exec(
      `INSERT OR IGNORE INTO audits (id, subject, subject_public, subject_class, model, payload, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      `aud_${jobId}`,
      tab.tabId,
      tab.publicId,
      tab.gpu?.class ?? null,
      row.model,
      payload,
      Date.now(),
    );
    log("info", "job sampled for audit", { jobId, tab: tab.publicId });
  }

  /**
   * Room for a payload of `bytes` within the audits' share of the storage budget: the oldest
   * audits not sent to a verifier are dropped first (missed samples, logged). False when even
   * that leaves no room (the rest are out with verifiers, each holding one at most): the new
   * sample is not kept. So audits never take the room client jobs are admitted in.
   */
  private makeRoom(bytes: number): boolean {
    const { sql, maxBytes } = this.d;
    if (bytes > maxBytes) return false;
    let used = sql
      .exec<{ b: number }>(`SELECT COALESCE(SUM(octet_length(payload)), 0) AS b FROM audits`)
      .one().b;
    while (used + bytes > maxBytes) {
      const oldest = sql
        .exec<{ id: string; b: number }>(
          `SELECT id, octet_length(payload) AS b FROM audits WHERE verifier IS NULL
           ORDER BY created_at LIMIT 1`,
        )
        .toArray()[0];
      if (!oldest) return false;
      sql.exec(`DELETE FROM audits WHERE id = ?`, oldest.id);
      used -= oldest.b;
      log("info", "audit dropped: audit storage full", { audit: oldest.id });
    }
    return true;
  }

  /** Give waiting audits to idle verifiers (never while client jobs wait for a tab). */
  async dispatch(): Promise<void> {
    const { sql, jobs, channel, placement, timers } = this.d;
    if (!this.d.reputation.settings.enabled) return;
    const now = Date.now();
    sql.exec(
      `DELETE FROM audits WHERE verifier IS NULL AND COALESCE(returned_at, created_at) < ?`,
      now - AUDIT_TTL_MS,
    );
    if (jobs.queued().length) return;
    const waiting = sql
      .exec<AuditRow>(`SELECT * FROM audits WHERE verifier IS NULL ORDER BY created_at LIMIT 20`)
      .toArray();
    if (!waiting.length) return;
    // One audit at a time: a tab holding one is no verifier, whatever it says of its state.
    const holding = new Set(
      sql
        .exec<{ verifier: string }>(`SELECT verifier FROM audits WHERE verifier IS NOT NULL`)
        .toArray()
        .map((r) => r.verifier),
    );
    for (const row of waiting) {
      const verifier = this.pickVerifier(row, holding);
      if (!verifier) continue;
      const payload = JSON.parse(row.payload) as Omit<AuditAssign, "type" | "auditId">;
      placement.updateTab(verifier, { state: "busy" });
      const sent = channel.send(verifier, { type: "audit.assign", auditId: row.id, ...payload });
      if (!sent) {
        placement.updateTab(verifier, { state: "idle" });
        continue;
      }
      holding.add(verifier.tabId);
      sql.exec(
        `UPDATE audits SET verifier = ?, sent_at = ? WHERE id = ?`,
        verifier.tabId,
        now,
        row.id,
      );
      const deadlineMs = auditDeadlineMs(this.d.reputation.settings.config, verifier.gpu?.class);
      await timers.set(auditTimer(row.id), now + deadlineMs);
      log("info", "audit sent", {
        audit: row.id,
        subject: row.subject_public,
        verifier: verifier.publicId,
      });
    }
  }

  /**
   * Idle, holding no audit, not the subject, same model, not quarantined, not rested by the
   * circuit breaker, and not one that let this audit's deadline pass; trusted preferred, then
   * one that says it scores on a GPU (its audit's deadline is minutes, not an hour and a half:
   * `auditDeadlineFor`), then another GPU class than the subject's. Trust first: the class is the tab's own claim (its
   * hello), so counting it above trust let any new identity claiming another class take audits
   * ahead of every trusted tab of the subject's class (verifier-choice.test.ts).
   */
  private pickVerifier(row: AuditRow, holding: ReadonlySet<string>): TabRecord | undefined {
    const { tabs, reputation, placement } = this.d;
    const missed = new Set(JSON.parse(row.missed) as string[]);
    let best: TabRecord | undefined;
    let bestScore = -1;
    for (const tab of tabs.all()) {
      if (tab.tabId === row.subject || tab.jobId || tab.state !== "idle") continue;
      if (holding.has(tab.tabId) || missed.has(tab.tabId)) continue;
      if (placement.isResting(tab.tabId)) continue;
      if (!tab.models.includes(row.model) || reputation.isQuarantined(tab.tabId)) continue;
      const state = reputation.stateOf(tab.tabId);
      if (state === "suspect") continue;
      const score =
        (state === "trusted" ? 4 : 0) +
        (mayScoreOnCpu(tab.gpu?.class) ? 0 : 2) +
        (tab.gpu?.class && tab.gpu.class !== row.subject_class ? 1 : 0);
      if (score > bestScore) {
        best = tab;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * A verifier answered: record the evidence about the subject; the verifier is free again. A
   * result for an audit it does not hold frees nothing (its state is taken only when it holds none:
   * a late answer after its deadline passed).
   */
  async onResult(verifier: TabRecord, msg: AuditResult): Promise<void> {
    const { sql, placement, reputation, timers } = this.d;
    const row = sql
      .exec<AuditRow>(
        `SELECT * FROM audits WHERE id = ? AND verifier = ?`,
        msg.auditId,
        verifier.tabId,
      )
      .toArray()[0];
    if (!row) {
      if (!verifier.jobId && !this.holds(verifier))
        placement.updateTab(verifier, { state: msg.state ?? "idle" });
      const audit = msg.auditId;
      this.d.trust.rejections.note(verifier.publicId, "result for an audit not held", { audit });
      return;
    }
    if (!verifier.jobId) placement.updateTab(verifier, { state: msg.state ?? "idle" });
    await timers.clear(auditTimer(row.id));
    if (msg.error) {
      // The verifier could not score: the audit waits for another verifier.
      this.handBack(row.id);
      log("info", "audit refused by verifier", {
        audit: row.id,
        verifier: verifier.publicId,
        code: msg.error.code,
      });
      return;
    }
    sql.exec(`DELETE FROM audits WHERE id = ?`, row.id);
    const payload = JSON.parse(row.payload) as { maxTokens: number };
    if (msg.tokenLogprobs.length === 0 && msg.stopLogprob === null) return;
    if (msg.tokenLogprobs.length > payload.maxTokens) {
      log("warn", "audit result rejected (more tokens than asked)", { tab: verifier.publicId });
      return;
    }
    await reputation.record(
      row.subject,
      row.subject_public,
      auditEvidence(msg, reputation.settings.config),
      `audit by ${verifier.publicId}`,
    );
  }

  /**
   * The audit's deadline passed (region-alarms.ts): if its verifier still holds it, the audit goes
   * back for another verifier (never this one again) and the silent verifier is at fault — a
   * tab-trust fault and a circuit-breaker failure, as for a missed lease.
   */
  async onDeadline(auditId: string): Promise<void> {
    const { sql, tabs, placement, trust } = this.d;
    const row = sql.exec<AuditRow>(`SELECT * FROM audits WHERE id = ?`, auditId).toArray()[0];
    if (!row?.verifier) return;
    // The last 16 verifiers that let it pass are kept (a bound on the row, not a policy).
    const missed = [...new Set([...(JSON.parse(row.missed) as string[]), row.verifier])];
    this.handBack(row.id, JSON.stringify(missed.slice(-16)));
    const verifier = tabs.get(row.verifier);
    // A verifier that vanished while the object was evicted is not blamed: nobody saw it leave.
    if (verifier) {
      trust.fault(verifier, "audit not answered in time", { audit: row.id });
      placement.recordFailure(verifier.tabId);
    }
    log("warn", "audit deadline passed; it goes to another verifier", {
      audit: row.id,
      subject: row.subject_public,
      verifier: verifier?.publicId ?? null,
    });
    await this.dispatch();
  }

  /** A verifier left: its audit waits for another one. */
  tabLeft(tab: TabRecord): void {
    this.d.sql.exec(
      `UPDATE audits SET verifier = NULL, sent_at = NULL, returned_at = ? WHERE verifier = ?`,
      Date.now(),
      tab.tabId,
    );
  }

  /** Does this tab hold an audit (sent, not yet answered)? */
  private holds(tab: TabRecord): boolean {
    return (
      this.d.sql.exec(`SELECT 1 FROM audits WHERE verifier = ? LIMIT 1`, tab.tabId).toArray()
        .length > 0
    );
  }

  /** The audit waits for a verifier again (its time to live starts afresh). */
  private handBack(auditId: string, missed?: string): void {
    this.d.sql.exec(
      `UPDATE audits SET verifier = NULL, sent_at = NULL, returned_at = ?,
         missed = COALESCE(?, missed) WHERE id = ?`,
      Date.now(),
      missed ?? null,
      auditId,
    );
  }

  /** Counts for GET /v1/nodes and the bench. */
  pending(): number {
    return this.d.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM audits`).one().n;
  }
}
