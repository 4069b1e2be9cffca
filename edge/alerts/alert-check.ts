import type { DirectorySnapshot } from "../directory/directory-do.js";
import { log } from "../http/log.js";
import type { AlertConfig } from "./alert-config.js";
import {
  auditJump,
  auditTotals,
  servedModels,
  slowRegions,
  unservedModels,
  type AlertKind,
  type AuditSample,
  type Condition,
} from "./alert-rules.js";
import { deliver, type AlertEvent, type Transport } from "./alert-webhook.js";

/**
 * The Directory's alert check (docs/status.md: Alerts), run by its alarm every `checkMs` from the
 * summaries the regions already send. A condition that starts opens an episode and queues one
 * `firing` call; while it lasts nothing more is sent; when it clears, one `resolved` call. Calls
 * wait in a small outbox in SQLite and are sent in order, each bounded by a timeout; a failed call
 * is tried again at later checks with doubling delay, at most `MAX_ATTEMPTS` times, and at most
 * `MAX_CALLS_PER_CHECK` calls go out per check — so a dead receiver costs a few requests a
 * minute, never a storm.
 */

const MAX_ATTEMPTS = 3;
const MAX_CALLS_PER_CHECK = 10;
const MAX_OUTBOX = 100;
/** Models remembered for the no-tab alert (the most recently served are kept). */
const MAX_MODELS = 500;
/** A model with no tab for this long, and no open episode, is forgotten. */
const FORGET_MODEL_MS = 7 * 24 * 3600_000;

/** Tables of the alert check (appended to the Directory's migrations). */
export const ALERT_MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS alert_models (
     model TEXT PRIMARY KEY, last_served_at INTEGER NOT NULL);
   CREATE TABLE IF NOT EXISTS alert_samples (
     at INTEGER PRIMARY KEY, audits INTEGER NOT NULL, failed INTEGER NOT NULL);
   CREATE TABLE IF NOT EXISTS alert_episodes (
     key TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, summary TEXT NOT NULL,
     details TEXT NOT NULL, started_at INTEGER NOT NULL);
   CREATE TABLE IF NOT EXISTS alert_outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL)`,
] as const;

interface EpisodeRow extends Record<string, SqlStorageValue> {
  key: string;
  kind: string;
  subject: string;
  summary: string;
  details: string;
  started_at: number;
}

export interface CheckResult {
  firing: string[];
  resolved: string[];
  sent: number;
  failed: number;
}

export class AlertCheck {
  constructor(
    private readonly sql: SqlStorage,
    public config: AlertConfig | null,
    public transport: Transport = (request) => fetch(request),
    public clock: () => number = Date.now,
  ) {}

  /** Evaluate the conditions on `snapshot`, open and close episodes, send what is due. */
  async check(snapshot: DirectorySnapshot): Promise<CheckResult> {
    const config = this.config;
    const result: CheckResult = { firing: [], resolved: [], sent: 0, failed: 0 };
    if (!config) return result;
    const now = this.clock();
    const conditions = [
      ...this.unserved(snapshot, config, now),
      ...slowRegions(snapshot, config, now),
      ...this.audits(snapshot, config, now),
    ];
    const open = new Map(
      this.sql
        .exec<EpisodeRow>(`SELECT * FROM alert_episodes`)
        .toArray()
        .map((r) => [r.key, r]),
    );
    for (const c of conditions) {
      const row = open.get(c.key);
      open.delete(c.key);
      if (row) {
        // Still going: keep its figures current (the resolved call reports the last ones).
        this.sql.exec(
          `UPDATE alert_episodes SET summary = ?, details = ? WHERE key = ?`,
          c.summary,
          JSON.stringify(c.details),
          c.key,
        );
        continue;
      }
      this.sql.exec(
        `INSERT INTO alert_episodes (key, kind, subject, summary, details, started_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
        c.key,
        c.kind,
        JSON.stringify(c.subject),
        c.summary,
        JSON.stringify(c.details),
        now,
      );
      this.enqueue(eventOf(c, "firing", now, null), now);
      result.firing.push(c.key);
    }
    for (const row of open.values()) {
      this.sql.exec(`DELETE FROM alert_episodes WHERE key = ?`, row.key);
      const ended: Condition = {
        key: row.key,
        kind: row.kind as AlertKind,
        subject: JSON.parse(row.subject) as Record<string, string>,
        summary: `Resolved: ${row.summary}`,
        details: JSON.parse(row.details) as Condition["details"],
      };
      this.enqueue(eventOf(ended, "resolved", row.started_at, now), now);
      result.resolved.push(row.key);
    }
    const sent = await this.flush(config, now);
    result.sent = sent.sent;
    result.failed = sent.failed;
    return result;
  }

  /** Open episodes (tests, and for operators through logs). */
  openKeys(): string[] {
    return this.sql
      .exec<{ key: string }>(`SELECT key FROM alert_episodes ORDER BY key`)
      .toArray()
      .map((r) => r.key);
  }

  private unserved(snapshot: DirectorySnapshot, config: AlertConfig, now: number): Condition[] {
    const served = servedModels(snapshot, now);
    for (const model of served) {
      this.sql.exec(
        `INSERT INTO alert_models (model, last_served_at) VALUES (?, ?)
         ON CONFLICT (model) DO UPDATE SET last_served_at = excluded.last_served_at`,
        model.slice(0, 200),
        now,
      );
    }
    // Watched models count from the first check that knows them.
    for (const model of config.watchModels)
      this.sql.exec(
        `INSERT OR IGNORE INTO alert_models (model, last_served_at) VALUES (?, ?)`,
        model,
        now,
      );
    this.sql.exec(
      `DELETE FROM alert_models WHERE last_served_at < ?
         AND 'model_unserved:' || model NOT IN (SELECT key FROM alert_episodes)`,
      now - FORGET_MODEL_MS,
    );
    this.sql.exec(
      `DELETE FROM alert_models WHERE model NOT IN (
         SELECT model FROM alert_models ORDER BY last_served_at DESC LIMIT ?)`,
      MAX_MODELS,
    );
    const last = new Map(
      this.sql
        .exec<{ model: string; last_served_at: number }>(`SELECT * FROM alert_models`)
        .toArray()
        .map((r) => [r.model, r.last_served_at]),
    );
    return unservedModels(last, served, config, now);
  }

  private audits(snapshot: DirectorySnapshot, config: AlertConfig, now: number): Condition[] {
    const current: AuditSample = { at: now, ...auditTotals(snapshot) };
    const samples = this.sql
      .exec<{ at: number; audits: number; failed: number }>(
        `SELECT at, audits, failed FROM alert_samples ORDER BY at`,
      )
      .toArray();
    const jump = auditJump(samples, current, config);
    this.sql.exec(
      `INSERT OR REPLACE INTO alert_samples (at, audits, failed) VALUES (?, ?, ?)`,
      current.at,
      current.audits,
      current.failed,
    );
    // Keep the window and the newest sample before it (the window's baseline; its totals are
    // also the rate before the window).
    const start = now - config.auditWindowMs;
    this.sql.exec(
      `DELETE FROM alert_samples
       WHERE at < (SELECT coalesce(max(at), 0) FROM alert_samples WHERE at <= ?)`,
      start,
    );
    return jump ? [jump] : [];
  }

  private enqueue(event: AlertEvent, now: number): void {
    this.sql.exec(
      `INSERT INTO alert_outbox (event, next_at) VALUES (?, ?)`,
      JSON.stringify(event),
      now,
    );
    const extra =
      this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM alert_outbox`).one().n - MAX_OUTBOX;
    if (extra > 0) {
      this.sql.exec(
        `DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox ORDER BY id LIMIT ?)`,
        extra,
      );
      log("error", "alert outbox full: oldest calls dropped", { dropped: extra });
    }
  }

  /** Send due calls in order; a call waiting for its retry holds back the ones after it. */
  private async flush(config: AlertConfig, now: number): Promise<{ sent: number; failed: number }> {
    let sent = 0;
    let failed = 0;
    const rows = this.sql
      .exec<{ id: number; event: string; attempts: number; next_at: number }>(
        `SELECT * FROM alert_outbox ORDER BY id LIMIT ?`,
        MAX_CALLS_PER_CHECK,
      )
      .toArray();
    for (const row of rows) {
      if (row.next_at > now) break;
      const event = JSON.parse(row.event) as AlertEvent;
      const r = await deliver(this.transport, config, event, `${row.id}-${row.attempts + 1}`, now);
      if (r.ok) {
        sent += 1;
        this.sql.exec(`DELETE FROM alert_outbox WHERE id = ?`, row.id);
        log("info", "alert sent", { key: event.key, status: event.status });
        continue;
      }
      failed += 1;
      const attempts = row.attempts + 1;
      if (attempts >= MAX_ATTEMPTS) {
        this.sql.exec(`DELETE FROM alert_outbox WHERE id = ?`, row.id);
        log("error", "alert webhook failed; call dropped", {
          key: event.key,
          status: event.status,
          attempts,
          httpStatus: r.status,
          error: r.error ?? null,
        });
        continue;
      }
      this.sql.exec(
        `UPDATE alert_outbox SET attempts = ?, next_at = ? WHERE id = ?`,
        attempts,
        now + config.checkMs * 2 ** attempts,
        row.id,
      );
      log("warn", "alert webhook failed; will retry", {
        key: event.key,
        attempts,
        httpStatus: r.status,
        error: r.error ?? null,
      });
      break;
    }
    return { sent, failed };
  }
}

function eventOf(
  c: Condition,
  status: AlertEvent["status"],
  startedAt: number,
  resolvedAt: number | null,
): AlertEvent {
  return {
    type: "tabgrid.alert",
    version: 1,
    status,
    alert: c.kind,
    key: c.key,
    subject: c.subject,
    summary: c.summary,
    details: c.details,
    started_at: new Date(startedAt).toISOString(),
    resolved_at: resolvedAt === null ? null : new Date(resolvedAt).toISOString(),
  };
}
