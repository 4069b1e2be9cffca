import type { EmbeddingInput, JobSpec } from "../../shared/protocol/job.js";
import { decodeVector } from "../../shared/protocol/embedding-vectors.js";
import type { TabMessage } from "../../shared/protocol/node-messages.js";
import type { JobStore } from "./job-store.js";

type VectorsFrame = Extract<TabMessage, { type: "job.vectors" }>;

/**
 * The answers of embedding jobs: vectors, checked as they arrive and kept in SQLite
 * (`job_vectors`, one row per input) until the job's record expires, so the Worker can read them
 * once the job is done — also after an eviction. A job's text column stays empty: an embedding
 * answer is no text, and the text path (job-store, job-relay) never sees it.
 *
 * A tab's answer is refused — the caller counts it as the tab's fault and moves the job on — unless
 * it is exactly one vector per input, in order, each of the model's length (the job's
 * `dimensions`), every value finite. Only vectors of the job's current tab are kept: an earlier
 * attempt's are dropped when the next attempt sends its first.
 */
export class EmbeddingAnswers {
  /** Which jobs are embedding jobs (memory only: read from the job record once per job). */
  private readonly kinds = new Map<string, boolean>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly jobs: JobStore,
  ) {}

  /** Whether `jobId` is an embedding job (false for unknown jobs and canaries). */
  isEmbedding(jobId: string): boolean {
    let known = this.kinds.get(jobId);
    if (known === undefined) {
      const row = this.jobs.get(jobId);
      if (!row) return false;
      known = row.kind === "embedding";
      this.kinds.set(jobId, known);
    }
    return known;
  }

  /** Take a frame of vectors from the job's current tab; returns why it is refused, or null. */
  add(spec: JobSpec, tabId: string, msg: VectorsFrame): string | null {
    const input = embeddingInput(spec);
    if (!input) return "vectors for a job that is not an embedding job";
    // A new attempt starts at 0: what an earlier one sent is not part of this answer.
    if (msg.index === 0) this.clear(msg.jobId);
    const held = this.count(msg.jobId, tabId);
    if (msg.index !== held) return `vectors from index ${msg.index}, expected ${held}`;
    if (msg.index + msg.vectors.length > input.inputs.length) {
      return `${msg.index + msg.vectors.length} vectors for ${input.inputs.length} inputs`;
    }
    const checked: string[] = [];
    for (const [i, text] of msg.vectors.entries()) {
      const v = decodeVector(text, input.dimensions);
      if (!v.ok) return `input ${msg.index + i}: ${v.why}`;
      checked.push(text);
    }
    for (const [i, text] of checked.entries()) {
      this.sql.exec(
        `INSERT OR REPLACE INTO job_vectors (job_id, idx, node_id, vector) VALUES (?, ?, ?, ?)`,
        msg.jobId,
        msg.index + i,
        tabId,
        text,
      );
    }
    return null;
  }

  /** At `job.done`: whether `tabId` sent one vector per input; returns why not, or null. */
  complete(spec: JobSpec, tabId: string): string | null {
    const input = embeddingInput(spec);
    if (!input) return "not an embedding job";
    const held = this.count(spec.id, tabId);
    return held === input.inputs.length
      ? null
      : `${held} vectors for ${input.inputs.length} inputs`;
  }

  /** A done job's vectors in input order (base64 float32, as checked on arrival). */
  read(jobId: string): string[] {
    return this.sql
      .exec<{ vector: string }>(
        `SELECT vector FROM job_vectors WHERE job_id = ? ORDER BY idx`,
        jobId,
      )
      .toArray()
      .map((r) => r.vector);
  }

  /** The job's record expired: its vectors go with it. */
  forget(jobId: string): void {
    this.kinds.delete(jobId);
    this.clear(jobId);
  }

  private clear(jobId: string): void {
    this.sql.exec(`DELETE FROM job_vectors WHERE job_id = ?`, jobId);
  }

  private count(jobId: string, tabId: string): number {
    return this.sql
      .exec<{ n: number }>(
        `SELECT count(*) AS n FROM job_vectors WHERE job_id = ? AND node_id = ?`,
        jobId,
        tabId,
      )
      .one().n;
  }
}

function embeddingInput(spec: JobSpec): EmbeddingInput | null {
  return spec.input.kind === "embedding" ? spec.input : null;
}
