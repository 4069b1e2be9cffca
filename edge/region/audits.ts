import { log } from "../http/log.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import { jobSeed, shouldAudit } from "../../shared/trust/policy.js";
import { auditEvidence } from "../../shared/trust/reputation.js";
import type { JobStore } from "./job-store.js";
import type { Placement } from "./placement.js";
import type { Reputation } from "./reputation.js";
import type { TabChannel } from "./tab-channel.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";

type AuditResult = Extract<TabMessage, { type: "audit.result" }>;

export interface AuditsDeps {
  sql: SqlStorage;
  jobs: JobStore;
  tabs: TabRegistry;
  channel: TabChannel;
  placement: Placement;
  reputation: Reputation;
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
}

/** An audit not given to a verifier within this time is dropped (a missed sample, logged). */
const AUDIT_TTL_MS = 5 * 60_000;

/**
 * Audits of finished answers (docs/trust.md): a keyed sample of finished jobs — more for tabs on
 * probation or suspect — is re-scored by a second tab serving the same model, preferably of
 * another GPU class and trusted, only while it is idle and no client job waits (clients first). The
 * verifier's log-probs become evidence about the tab that answered (reputation.ts). Audits live in
 * SQLite (`audits`) until their result arrives; a verifier that leaves hands its audit back.
 */
export class Audits {
  constructor(private readonly d: AuditsDeps) {}

  /** A client job finished on `tab`: maybe sample it for an audit, then give out waiting audits. */
  afterJob(tab: TabRecord, jobId: string): void {
    const { reputation, jobs, sql } = this.d;
    if (!reputation.settings.enabled) return;
    const row = jobs.get(jobId);
    // Only answers wholly written by this tab (a failover's text has several authors).
    if (!row || row.state !== "done" || row.attempt_start_chars !== 0 || !row.text) return;
    const spec: JobSpec = jobs.spec(row);
    // An embedding answer is vectors, not text to re-score.
    if (spec.input.kind === "embedding") return;
    const c = reputation.settings.config;
    if (!shouldAudit(c, jobId, reputation.stateOf(tab.tabId), spec.sampling.temperature)) return;
    const audit: Omit<AuditAssign, "type" | "auditId"> = {
      model: row.model,
      input: spec.input,
      sampling: spec.sampling,
      answer: row.text,
      seed: jobSeed(c, `audit:${jobId}`),
      // The end of the answer says something only when the model itself chose to stop there.
      scoreStop:
        row.finish_reason === "stop" && !spec.sampling.stop?.length && !spec.sampling.constraint,
      maxTokens: c.maxAuditTokens,
    };
    sql.exec(
      `INSERT OR IGNORE INTO audits (id, subject, subject_public, subject_class, model, payload, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      `aud_${jobId}`,
      tab.tabId,
      tab.publicId,
      tab.gpu?.class ?? null,
      row.model,
      JSON.stringify(audit),
      Date.now(),
    );
    log("info", "job sampled for audit", { jobId, tab: tab.publicId });
  }

  /** Give waiting audits to idle verifiers (never while client jobs wait for a tab). */
  dispatch(): void {
    const { sql, jobs, channel, placement } = this.d;
    if (!this.d.reputation.settings.enabled) return;
    sql.exec(
      `DELETE FROM audits WHERE verifier IS NULL AND created_at < ?`,
      Date.now() - AUDIT_TTL_MS,
    );
    if (jobs.queued().length) return;
    const waiting = sql
      .exec<AuditRow>(`SELECT * FROM audits WHERE verifier IS NULL ORDER BY created_at LIMIT 20`)
      .toArray();
    for (const row of waiting) {
      const verifier = this.pickVerifier(row);
      if (!verifier) continue;
      const payload = JSON.parse(row.payload) as Omit<AuditAssign, "type" | "auditId">;
      placement.updateTab(verifier, { state: "busy" });
      const sent = channel.send(verifier, { type: "audit.assign", auditId: row.id, ...payload });
      if (!sent) {
        placement.updateTab(verifier, { state: "idle" });
        continue;
      }
      sql.exec(
        `UPDATE audits SET verifier = ?, sent_at = ? WHERE id = ?`,
        verifier.tabId,
        Date.now(),
        row.id,
      );
      log("info", "audit sent", {
        audit: row.id,
        subject: row.subject_public,
        verifier: verifier.publicId,
      });
    }
  }

  /** Idle, not the subject, same model, not quarantined; another GPU class and trusted preferred. */
  private pickVerifier(row: AuditRow): TabRecord | undefined {
    const { tabs, reputation } = this.d;
    let best: TabRecord | undefined;
    let bestScore = -1;
    for (const tab of tabs.all()) {
      if (tab.tabId === row.subject || tab.jobId || tab.state !== "idle") continue;
      if (!tab.models.includes(row.model) || reputation.isQuarantined(tab.tabId)) continue;
      const state = reputation.stateOf(tab.tabId);
      if (state === "suspect") continue;
      const score =
        (tab.gpu?.class && tab.gpu.class !== row.subject_class ? 2 : 0) +
        (state === "trusted" ? 1 : 0);
      if (score > bestScore) {
        best = tab;
        bestScore = score;
      }
    }
    return best;
  }

  /** A verifier answered: record the evidence about the subject; the verifier is free again. */
  async onResult(verifier: TabRecord, msg: AuditResult): Promise<void> {
    const { sql, placement, reputation } = this.d;
    const row = sql
      .exec<AuditRow>(
        `SELECT * FROM audits WHERE id = ? AND verifier = ?`,
        msg.auditId,
        verifier.tabId,
      )
      .toArray()[0];
    if (!verifier.jobId) placement.updateTab(verifier, { state: msg.state ?? "idle" });
    if (!row) {
      log("warn", "audit result rejected (not this tab's audit)", {
        tab: verifier.publicId,
        audit: msg.auditId,
      });
      return;
    }
    if (msg.error) {
      // The verifier could not score: the audit waits for another verifier.
      sql.exec(`UPDATE audits SET verifier = NULL, sent_at = NULL WHERE id = ?`, row.id);
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

  /** A verifier left: its audits wait for another one. */
  tabLeft(tab: TabRecord): void {
    this.d.sql.exec(
      `UPDATE audits SET verifier = NULL, sent_at = NULL WHERE verifier = ?`,
      tab.tabId,
    );
  }

  /** Counts for GET /v1/nodes and the bench. */
  pending(): number {
    return this.d.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM audits`).one().n;
  }
}
