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
 * last bound holds as they arrive and a stream can pass them on at once (job-events.ts). Each
 * entry must also be coherent as one distribution's (`incoherence`).
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
  const greedy = sampling.temperature === 0;
  for (const e of entries) {
    const incoherent = incoherence(e, greedy);
    if (incoherent) return incoherent;
  }
  return null;
}

/**
 * Slack for rounding: WebLLM takes every value of an entry from one float32 distribution (the
 * softmax it samples from), so an honest entry meets these exactly; JSON keeps float64.
 */
const SLACK = 1e-6;
/** Alternatives are distinct tokens of one distribution; float32 rounding of their sum is ~1e-7. */
const SUM_SLACK = 1e-4;

/**
 * What makes one entry impossible as a distribution's, or null. The values are a stranger's and
 * cannot be recomputed here, but they must be coherent: WebLLM (`getTokenLogprob`) reads the
 * sampled token's and the alternatives' probabilities from the same array after the softmax, and
 * lists the alternatives most likely first — so they are in order, the sampled token is no more
 * likely than the most likely one, their probabilities sum to at most 1, and at temperature 0
 * (WebLLM samples at 1e-6: the most likely token, or one tied with it) the sampled token is as
 * likely as the first alternative. A tab that makes the values up without keeping to this is
 * caught; one that fabricates a coherent distribution is not (docs/trust.md says what would).
 */
function incoherence(e: TokenLogprob, greedy: boolean): string | null {
  const first = e.top[0];
  if (!first) return null;
  let sum = 0;
  for (let i = 0; i < e.top.length; i++) {
    const alt = e.top[i]!;
    if (i > 0 && alt.logprob > e.top[i - 1]!.logprob + SLACK)
      return "alternatives not listed most likely first";
    sum += Math.exp(alt.logprob);
  }
  if (sum > 1 + SUM_SLACK) return "alternatives more likely than certain together";
  if (e.logprob > first.logprob + SLACK)
    return "a token more likely than the most likely alternative";
  if (greedy && e.logprob < first.logprob - SLACK)
    return "a token less likely than the most likely alternative at temperature 0";
  return null;
}
