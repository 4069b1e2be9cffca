import type { Sampling } from "../../shared/protocol/job.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";

/**
 * The token log-probabilities tabs returned for jobs that asked for them (job.logprobs frames),
 * kept beside the job record (table `job_logprobs`, sql-schema.ts) until the job's `done` event
 * carries them to a client that collects the whole answer, and deleted with the job. (A streaming
 * client gets each frame's entries as they arrive, in a `logprobs` event.) Only entries of the tab serving the job
 * are stored, and only after `logprobsProblem` found nothing wrong with them.
 */
export class JobLogprobs {
  constructor(private readonly sql: SqlStorage) {}

  /** Entries stored for the job from `nodeId`. */
  count(jobId: string, nodeId: string): number {
    const row = this.sql
      .exec<{ n: number | null }>(
        `SELECT sum(count) AS n FROM job_logprobs WHERE job_id = ? AND node_id = ?`,
        jobId,
        nodeId,
      )
      .one();
    return row.n ?? 0;
  }

  append(jobId: string, nodeId: string, entries: TokenLogprob[]): void {
    this.sql.exec(
      `INSERT INTO job_logprobs (job_id, node_id, count, entries) VALUES (?, ?, ?, ?)`,
      jobId,
      nodeId,
      entries.length,
      JSON.stringify(entries),
    );
  }

  /** The entries `nodeId` sent for the job, in the order it sent them. */
  read(jobId: string, nodeId: string): TokenLogprob[] {
    return this.sql
      .exec<{ entries: string }>(
        `SELECT entries FROM job_logprobs WHERE job_id = ? AND node_id = ? ORDER BY rowid`,
        jobId,
        nodeId,
      )
      .toArray()
      .flatMap((r) => JSON.parse(r.entries) as TokenLogprob[]);
  }

  delete(jobId: string): void {
    this.sql.exec(`DELETE FROM job_logprobs WHERE job_id = ?`, jobId);
  }
}

/**
 * What is wrong with a tab's next `entries` for a job, or null. The frame's schema already bounds
 * each value (finite, ≤ 0), each token's bytes and the alternatives' count (shared/protocol/
 * logprobs.ts); this checks them against the job: it asked for logprobs, no more alternatives than
 * it asked for, no more entries than tokens it may emit (`max_tokens`), and no more than the text
 * received so far can have been (`textBytes` of the answer: a token is at least one byte, plus the
 * stop token; usage-bounds.ts). The tab sends a piece's entries after the piece's text, so that
 * last bound holds as they arrive and a stream can pass them on at once (job-events.ts).
 */
export function logprobsProblem(
  sampling: Sampling,
  stored: number,
  entries: TokenLogprob[],
  textBytes: number,
): string | null {
  const asked = sampling.logprobs;
  if (!asked) return "the job did not ask for logprobs";
  if (entries.some((e) => e.top.length > asked.top))
    return `more than the ${asked.top} alternatives asked for`;
  if (stored + entries.length > sampling.max_tokens)
    return `more entries than the ${sampling.max_tokens} tokens max_tokens allows`;
  if (stored + entries.length > textBytes + 1)
    return "more entries than tokens in the text sent so far";
  return null;
}
