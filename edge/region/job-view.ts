import type { JobRow, JobState } from "./job-store.js";

/** GET /v1/jobs/:id — a job's status and the text delivered so far. */
export interface JobView {
  id: string;
  object: "tabgrid.job";
  model: string;
  kind: string;
  state: JobState;
  attempts: number;
  created: number;
  text: string;
  finish_reason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  error: { code: string; message: string } | null;
}

export function jobView(row: JobRow): JobView {
  return {
    id: row.id,
    object: "tabgrid.job",
    model: row.model,
    kind: row.kind,
    state: row.state,
    attempts: row.attempts,
    created: Math.floor(row.created_at / 1000),
    text: row.text,
    finish_reason: row.finish_reason,
    usage:
      row.prompt_tokens !== null && row.completion_tokens !== null
        ? {
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            total_tokens: row.prompt_tokens + row.completion_tokens,
          }
        : null,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? "" } : null,
  };
}
