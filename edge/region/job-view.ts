import type { ToolCall } from "../../shared/openai/chat.js";
import { readToolAnswer } from "../openai/tool-calls.js";
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
  return {
    id: row.id,
    object: "tabgrid.job",
    model: row.model,
    kind: row.kind,
    state: row.state,
    attempts: row.attempts,
    created: Math.floor(row.created_at / 1000),
    ...answerOf(row),
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

/**
 * The job's text, read as the chat response reads it. A tool envelope is read whole once the job
 * finished (as a stream reads it at the end); until then it has no content to show. A cut-off
 * envelope (finish "length") or one that cannot be read is shown as written, as the chat response
 * returns it (content with finish "length", or a 502 naming the unreadable answer).
 */
function answerOf(row: JobRow): Pick<JobView, "text" | "tool_calls" | "finish_reason"> {
  const plain = { text: row.text, finish_reason: row.finish_reason };
  const mode = row.reading ? (JSON.parse(row.reading) as JobReading).mode : null;
  if (mode?.kind !== "tools" || row.finish_reason === "length") return plain;
  if (row.state !== "done") return { text: "", finish_reason: row.finish_reason };
  try {
    const answer = readToolAnswer(row.text, row.id, mode.contentIsJson);
    return answer.kind === "tool_calls"
      ? { text: "", tool_calls: answer.calls, finish_reason: "tool_calls" }
      : { text: answer.content, finish_reason: row.finish_reason };
  } catch {
    return plain;
  }
}
