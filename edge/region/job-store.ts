import type { FinishReason, JobErrorCode, JobSpec, Usage } from "../../shared/protocol/job.js";

/** Lifecycle of a job; terminal states are done, failed and cancelled. */
export type JobState = "queued" | "assigned" | "streaming" | "done" | "failed" | "cancelled";

export interface JobRow extends Record<string, SqlStorageValue> {
  id: string;
  request_id: string;
  model: string;
  kind: string;
  node_id: string | null;
  state: JobState;
  created_at: number;
  updated_at: number;
  delivered_chars: number;
  next_seq: number;
  finish_reason: string | null;
  error_code: string | null;
}

/**
 * Job records in the Region object's SQLite. A job is written before it is dispatched, so a job
 * is never only in memory; every transition is one UPDATE.
 */
export class JobStore {
  constructor(private readonly sql: SqlStorage) {}

  create(spec: JobSpec, requestId: string, nodeId: string): void {
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO jobs (id, request_id, model, kind, node_id, state, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'assigned', ?, ?)`,
      spec.id,
      requestId,
      spec.model,
      spec.input.kind,
      nodeId,
      now,
      now,
    );
  }

  get(id: string): JobRow | undefined {
    return this.sql.exec<JobRow>(`SELECT * FROM jobs WHERE id = ?`, id).toArray()[0];
  }

  /** The unfinished job a node is serving, used to rebuild state after eviction. */
  activeFor(nodeId: string): string | null {
    const row = this.sql
      .exec<{ id: string }>(
        `SELECT id FROM jobs WHERE node_id = ? AND state IN ('assigned', 'streaming') LIMIT 1`,
        nodeId,
      )
      .toArray()[0];
    return row?.id ?? null;
  }

  markStreaming(id: string): void {
    this.sql.exec(
      `UPDATE jobs SET state = 'streaming', updated_at = ? WHERE id = ? AND state = 'assigned'`,
      Date.now(),
      id,
    );
  }

  /** Record a delta; false when `seq` is not the next expected one (duplicate or out of order). */
  recordDelta(id: string, seq: number, chars: number): boolean {
    const cursor = this.sql.exec(
      `UPDATE jobs SET next_seq = next_seq + 1, delivered_chars = delivered_chars + ?,
         state = 'streaming', updated_at = ?
       WHERE id = ? AND next_seq = ? AND state IN ('assigned', 'streaming')`,
      chars,
      Date.now(),
      id,
      seq,
    );
    return cursor.rowsWritten > 0;
  }

  finish(id: string, finishReason: FinishReason, usage: Usage): void {
    this.sql.exec(
      `UPDATE jobs SET state = 'done', finish_reason = ?, prompt_tokens = ?, completion_tokens = ?,
         updated_at = ? WHERE id = ?`,
      finishReason,
      usage.prompt_tokens,
      usage.completion_tokens,
      Date.now(),
      id,
    );
  }

  fail(id: string, code: JobErrorCode): void {
    this.sql.exec(
      `UPDATE jobs SET state = 'failed', error_code = ?, updated_at = ? WHERE id = ?
         AND state NOT IN ('done', 'failed', 'cancelled')`,
      code,
      Date.now(),
      id,
    );
  }

  cancel(id: string): boolean {
    const cursor = this.sql.exec(
      `UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE id = ?
         AND state NOT IN ('done', 'failed', 'cancelled')`,
      Date.now(),
      id,
    );
    return cursor.rowsWritten > 0;
  }
}
