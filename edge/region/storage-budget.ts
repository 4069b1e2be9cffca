import type { JobError } from "../../shared/protocol/job.js";
import { log } from "../http/log.js";
import type { JobRequest } from "./job-request.js";
import { regionTimerCodec } from "./region-timers.js";
import { answerByteCap, utf8Bytes } from "./usage-bounds.js";
import { AUDIT_ROW_BYTES } from "./audits.js";

/** A Region object's storage budget (REGION_STORAGE_BYTES, REGION_MAX_JOBS; docs/limits.md). */
export interface StorageLimits {
  maxBytes: number;
  maxJobs: number;
}

/**
 * Share of the byte budget set aside for audit payloads (prompt and answer of each audit waiting
 * for, or out with, a verifier): audits keep within it themselves (audits.ts drops the oldest
 * unsent ones), and jobs are admitted within the rest, so audits never make the Region refuse a
 * client's job. 32 MiB of the default 256 MiB: a payload is at most the 1 MiB request body plus
 * 16 KiB of answer, and an unsent audit expires after 5 minutes.
 */
export const AUDIT_STORAGE_SHARE = 0.125;

/** Bytes of audit payloads a Region object of this budget keeps at most. */
export function auditStorageBytes(maxBytes: number): number {
  return Math.floor(maxBytes * AUDIT_STORAGE_SHARE);
}

/** What the budget counts, in bytes as stored (UTF-8). */
export interface StorageUsage {
  jobs: number;
  /** Jobs (request, text; an unfinished job counts its whole answer allowance) and logs. */
  bytes: number;
  /** Of which audit payloads and canary answers (the Region's logs of other tabs' work). */
  logBytes: number;
  /** Of which audit payloads, kept within `auditMaxBytes` by audits.ts. */
  auditBytes: number;
  /** The part of `maxBytes` set aside for audit payloads; jobs fit in the rest. */
  auditMaxBytes: number;
  /** Finished jobs evicted to stay within the budget, since the object was created. */
  evicted: number;
  maxBytes: number;
  maxJobs: number;
}

/** Columns besides the request and text, and the row's index entries: a fixed allowance per job. */
const ROW_OVERHEAD_BYTES = 512;
/** Eviction frees down to this share of the budget, so it runs once per many jobs, not per job. */
const LOW_WATER = 0.9;
const REFUSAL_ALERT_EVERY_MS = 60_000;
const TERMINAL = `('done', 'failed', 'cancelled')`;
/**
 * The full scan (three aggregates over every job, audit and canary) costs time in proportion to
 * the jobs stored, on the open path of every request. Between scans the budget keeps an upper
 * bound instead (docs/limits.md): the last scan plus every job admitted since. It rescans when the
 * scan is older than this, or when the bound passes SCAN_ABOVE of the budget.
 */
const SCAN_MAX_AGE_MS = 1_000;
const SCAN_ABOVE = 0.8;
/** The stored spec holds the job id too (`specOf`), which the request does not; more than its size. */
const ID_ALLOWANCE_BYTES = 128;

/** The last full scan and what was admitted since: an upper bound on jobs and their bytes. */
interface Bound {
  at: number;
  jobs: number;
  bytes: number;
}

/**
 * Keeps one Region object's SQLite within its budget of bytes and job records, whatever strangers
 * send. Checked before every new job is written: the stored requests and texts, the answer
 * allowance of every unfinished job (max_tokens × the longest token; the coordinator stops a tab
 * that passes it, usage-bounds.ts, so a running job never outgrows what is counted here) and the
 * canary answers being written, within the budget less the audits' share (AUDIT_STORAGE_SHARE,
 * which audits.ts keeps to). When the next job would not fit, the oldest finished jobs are
 * evicted (their reads become 404) and one structured alert line is logged; running and queued
 * jobs are never touched. If they alone fill the budget, the new job is refused (429).
 */
export class StorageBudget {
  private lastRefusalAlert = 0;
  private bound: Bound | null = null;
  /** What jobs and canary answers may fill: the budget less the audits' share. */
  private readonly jobRoom: number;

  constructor(
    private readonly sql: SqlStorage,
    private readonly limits: StorageLimits,
    private readonly region: string,
  ) {
    sql.exec(
      `CREATE TABLE IF NOT EXISTS storage_budget (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
    );
    this.jobRoom = limits.maxBytes - auditStorageBytes(limits.maxBytes);
  }

  usage(): StorageUsage {
    const jobs = this.sql
      .exec<{ n: number; bytes: number }>(
        `SELECT count(*) AS n, COALESCE(SUM(octet_length(spec) + ? + CASE
           WHEN state IN ${TERMINAL} THEN text_bytes
           ELSE max(text_bytes, answer_cap_bytes) END), 0) AS bytes
         FROM jobs`,
        ROW_OVERHEAD_BYTES,
      )
      .one();
    const auditBytes = this.sql
      .exec<{ b: number }>(`SELECT COALESCE(SUM(${AUDIT_ROW_BYTES}), 0) AS b FROM audits`)
      .one().b;
    const logBytes =
      auditBytes +
      this.sql
        .exec<{ b: number }>(`SELECT COALESCE(SUM(octet_length(text)), 0) AS b FROM canary_runs`)
        .one().b;
    return {
      jobs: jobs.n,
      bytes: jobs.bytes + logBytes,
      logBytes,
      auditBytes,
      auditMaxBytes: auditStorageBytes(this.limits.maxBytes),
      evicted: this.evictedTotal(),
      ...this.limits,
    };
  }

  /** Bytes counted against the jobs' room: everything but the audits, which have their own. */
  private counted(u: StorageUsage): number {
    return u.bytes - u.auditBytes;
  }

  /**
   * Make room for a new job, evicting the oldest finished jobs if it would not fit; null when it
   * fits, else the error that refuses it (only unfinished jobs and logs are left).
   */
  makeRoom(request: JobRequest): JobError | null {
    const incoming =
      utf8Bytes(JSON.stringify(request.job)) +
      answerByteCap(request.job.sampling.max_tokens) +
      ROW_OVERHEAD_BYTES;
    const { maxBytes, maxJobs } = this.limits;
    const room = this.jobRoom;
    // Far below the budget by the bound: admit without scanning. The bound is never below the
    // stored jobs' bytes: jobs enter only through here, and an unfinished job is counted at its
    // whole answer allowance, which it cannot outgrow (usage-bounds.ts).
    const now = Date.now();
    const b = this.bound;
    if (
      b &&
      now - b.at < SCAN_MAX_AGE_MS &&
      b.bytes + incoming <= room * SCAN_ABOVE &&
      b.jobs + 1 <= maxJobs * SCAN_ABOVE
    ) {
      b.bytes += incoming + ID_ALLOWANCE_BYTES;
      b.jobs += 1;
      return null;
    }
    const before = this.usage();
    if (this.counted(before) + incoming <= room && before.jobs + 1 <= maxJobs) {
      this.bound = {
        at: now,
        jobs: before.jobs + 1,
        bytes: this.counted(before) + incoming + ID_ALLOWANCE_BYTES,
      };
      return null;
    }
    this.bound = null;

    const freeBytes = this.counted(before) + incoming - Math.floor(room * LOW_WATER);
    const freeJobs = before.jobs + 1 - Math.floor(maxJobs * LOW_WATER);
    const victims: string[] = [];
    let freed = 0;
    const oldest = this.sql.exec<{ id: string; bytes: number }>(
      `SELECT id, octet_length(spec) + text_bytes + ? AS bytes FROM jobs
       WHERE state IN ${TERMINAL} ORDER BY updated_at, created_at`,
      ROW_OVERHEAD_BYTES,
    );
    for (const row of oldest) {
      if (freed >= freeBytes && victims.length >= freeJobs) break;
      victims.push(row.id);
      freed += row.bytes;
    }
    for (const id of victims) {
      this.sql.exec(`DELETE FROM jobs WHERE id = ?`, id);
      // Its expiry timer would find nothing; drop it so the timer table stays as small.
      this.sql.exec(
        `DELETE FROM timers WHERE name = ?`,
        regionTimerCodec.encode({ kind: "expire", jobId: id }),
      );
    }
    if (victims.length) {
      this.sql.exec(
        `INSERT INTO storage_budget (key, value) VALUES ('evicted', ?)
         ON CONFLICT(key) DO UPDATE SET value = value + excluded.value`,
        victims.length,
      );
    }
    const after = this.usage();
    const fits = this.counted(after) + incoming <= room && after.jobs + 1 <= maxJobs;
    // Refusals while only unfinished jobs fill the budget repeat per request: one line a minute.
    const quiet = !victims.length && now - this.lastRefusalAlert < REFUSAL_ALERT_EVERY_MS;
    if (!victims.length && !quiet) this.lastRefusalAlert = now;
    if (!quiet)
      log("warn", "alert: region storage budget reached", {
        alert: "storage_budget",
        region: this.region,
        usedBytes: before.bytes,
        maxBytes,
        auditBytes: before.auditBytes,
        jobs: before.jobs,
        maxJobs,
        evicted: victims.length,
        freedBytes: freed,
        refused: !fits,
      });
    if (fits) {
      this.bound = {
        at: now,
        jobs: after.jobs + 1,
        bytes: this.counted(after) + incoming + ID_ALLOWANCE_BYTES,
      };
      return null;
    }
    return {
      code: "queue_full",
      message:
        "This region's job storage is full of unfinished jobs; retry when some have finished.",
      retryAfterS: 5,
    };
  }

  private evictedTotal(): number {
    return (
      this.sql
        .exec<{ value: number }>(`SELECT value FROM storage_budget WHERE key = 'evicted'`)
        .toArray()[0]?.value ?? 0
    );
  }
}
