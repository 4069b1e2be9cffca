import type { AnswerMode } from "../openai/tool-calls.js";
import type { JobRow } from "./job-store.js";
import { answerSchema, jobView, type JobView } from "./job-view.js";

/**
 * What the Worker needs to give a job back to the client that created it, and to nobody else: the
 * hash of the job's read token (edge/auth/job-token.ts) and how its answer is shaped (a tool-call
 * envelope is replayed as `tool_calls`, as the first response gave it). The tab never sees either.
 * Stored as JSON in `jobs.reading`.
 */
export interface JobReading {
  tokenHash: string;
  mode: AnswerMode;
  /**
   * Whether the client that opened the job reads it as a stream. Absent on jobs written before it
   * was recorded: those are treated as streamed (continued on failover, as they were).
   */
  streamed?: boolean;
}

/** A job as the Worker checks it before a client reads, resumes or cancels it. */
export interface ReadableJob {
  view: JobView;
  owner: string | null;
  /** Null for a job written before read tokens existed (nobody may read it through the API). */
  reading: JobReading | null;
  /**
   * The schema its answer was decoded under, as JSON (an RPC result carries no `unknown`), which
   * the Worker checks the answer against; null for text.
   */
  schemaJson: string | null;
}

/**
 * Whether a job whose tab failed starts its answer again on the next tab instead of continuing
 * it. A grammar cannot be resumed after another tab's text (docs/api.md, "Failover of a
 * constrained answer"), so a constrained answer no client has seen yet starts over under the same
 * grammar: a tool-call envelope (responses read it whole at the end, and the job view shows none
 * of it), and a `response_format` JSON answer whose client does not stream (it gets the answer
 * whole). A streamed JSON answer is continued: its client already holds the first tab's text.
 */
export function restartsOnFailover(row: JobRow): boolean {
  if (!row.text || !row.reading) return false;
  return noClientSawIt(JSON.parse(row.reading) as JobReading);
}

/**
 * Whether no client has seen any of the answer before it ends: a tool envelope (read whole at the
 * end) or a JSON answer whose client does not stream. Such an answer can start again on another
 * tab (a failover, or a wrong answer: structure-check.ts).
 */
export function noClientSawIt(reading: JobReading): boolean {
  if (reading.mode.kind === "tools") return true;
  return reading.mode.kind === "json" && reading.streamed === false;
}

export function readableJob(row: JobRow): ReadableJob {
  const schema = answerSchema(row);
  return {
    view: jobView(row),
    owner: row.owner,
    reading: row.reading ? (JSON.parse(row.reading) as JobReading) : null,
    schemaJson: schema ? JSON.stringify(schema) : null,
  };
}
