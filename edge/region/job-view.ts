import type { ToolCall } from "../../shared/openai/chat.js";
import type { JsonSchema } from "../../shared/openai/json-schema.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { ApiError } from "../http/api-error.js";
import { readToolAnswer } from "../openai/structured-answer.js";
import type { JobReading } from "./job-reading.js";
import type { JobRow, JobState } from "./job-store.js";

/**
 * GET /v1/jobs/:id — a job's status and the answer delivered so far, shaped as its chat response
 * shapes it: for a tool-calling job, `text` is the answer's content and `tool_calls` its calls,
 * never the tool envelope the tab wrote (edge/openai/tool-calls.ts).
 */
export interface JobView {
  id: string;
  object: "tabgrid.job";
  model: string;
  kind: string;
  state: JobState;
  attempts: number;
  created: number;
  text: string;
  /** Only for a tool-calling job that answered with calls (then `finish_reason` is "tool_calls"). */
  tool_calls?: ToolCall[];
  finish_reason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  error: { code: string; message: string } | null;
}

export function jobView(row: JobRow): JobView {
  const { error, ...answer } = answerOf(row);
  return {
    id: row.id,
    object: "tabgrid.job",
    model: row.model,
    kind: row.kind,
    state: row.state,
    attempts: row.attempts,
    created: Math.floor(row.created_at / 1000),
    ...answer,
    usage:
      row.prompt_tokens !== null && row.completion_tokens !== null
        ? {
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            total_tokens: row.prompt_tokens + row.completion_tokens,
          }
        : null,
    error:
      error ?? (row.error_code ? { code: row.error_code, message: row.error_message ?? "" } : null),
  };
}

/**
 * The job's text, read as the chat response reads it. A tool envelope is read whole once the job
 * finished (as a stream reads it at the end); until then it has no content to show. A cut-off
 * envelope (finish "length") is shown as written, as the chat response returns it (content with
 * finish "length"). One that cannot be read, or is outside the job's constraint (a tool the
 * request did not offer, more calls than it allows), shows no text and the error the chat
 * response gave (502 `invalid_structured_output`): never its calls, nor the envelope.
 */
function answerOf(
  row: JobRow,
): Pick<JobView, "text" | "tool_calls" | "finish_reason"> & { error?: JobView["error"] } {
  const plain = { text: row.text, finish_reason: row.finish_reason };
  const mode = row.reading ? (JSON.parse(row.reading) as JobReading).mode : null;
  if (mode?.kind !== "tools" || row.finish_reason === "length") return plain;
  if (row.state !== "done") return { text: "", finish_reason: row.finish_reason };
  try {
    const answer = readToolAnswer(row.text, row.id, mode.contentIsJson, answerSchema(row));
    return answer.kind === "tool_calls"
      ? { text: "", tool_calls: answer.calls, finish_reason: "tool_calls" }
      : { text: answer.content, finish_reason: row.finish_reason };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const error = { code: err.code ?? "invalid_structured_output", message: err.message };
    return { text: "", finish_reason: row.finish_reason, error };
  }
}

/** The job's constraint (`sampling.constraint.schema`): the schema its tab's grammar enforced. */
export function answerSchema(row: JobRow): JsonSchema | null {
  return constraintSchema(JSON.parse(row.spec) as JobSpec);
}

/** The schema of a spec's constraint, null when it has none. */
export function constraintSchema(spec: JobSpec): JsonSchema | null {
  return (spec.sampling.constraint?.schema as JsonSchema | undefined) ?? null;
}
