import type { ToolCall } from "../../shared/openai/chat.js";
import type { JsonSchema } from "../../shared/openai/json-schema.js";
import { schemaMismatch } from "../../shared/openai/json-schema-match.js";
import { ApiError } from "../http/api-error.js";
import { log } from "../http/log.js";

/**
 * Reading a tab's structured answer — a `response_format` JSON answer or the tool envelope
 * (tool-calls.ts) — before any of it reaches a client. The tab decoded under a grammar built from
 * the job's constraint (`sampling.constraint.schema`), so an honest tab's answer parses and
 * matches it; tabs are strangers' machines, so the coordinator checks both against that same
 * schema (shared/openai/json-schema-match.ts): a tool the request did not offer, more calls than
 * it allows, arguments outside a tool's `parameters`, an answer outside the `json_schema`. Anything
 * else is a 502 naming what is wrong, never a guess and never passed on.
 */

/** What the tab's envelope meant, in OpenAI's terms. */
export type ToolAnswer =
  { kind: "content"; content: string } | { kind: "tool_calls"; calls: ToolCall[] };

/**
 * The tab's JSON answer, parsed and checked against `schema` (the job's constraint; null: parse
 * only, for a job that had none).
 */
export function checkedJson(text: string, schema: JsonSchema | null, jobId: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw unreadable("it is not JSON");
  }
  const problem = schema ? schemaMismatch(value, schema) : null;
  if (problem) {
    const where = problem.path || "the answer";
    log("warn", "tab answer outside its schema", { jobId, at: where, problem: problem.message });
    throw new ApiError(
      502,
      "server_error",
      `The tab's answer does not follow the request: ${where} ${problem.message}.`,
      null,
      "invalid_structured_output",
    );
  }
  return value;
}

/**
 * Read the tab's envelope, checked against the job's constraint: the call names, how many calls,
 * each call's arguments and a content answer are all in that schema (tool-calls.ts `planAnswer`).
 */
export function readToolAnswer(
  text: string,
  jobId: string,
  contentIsJson: boolean,
  schema: JsonSchema | null,
): ToolAnswer {
  const value = checkedJson(text, schema, jobId);
  if (!value || typeof value !== "object") throw unreadable("it is not a JSON object");
  const v = value as { content?: unknown; tool_calls?: unknown };
  if (Array.isArray(v.tool_calls) && v.tool_calls.length) {
    const suffix = jobId.slice(-12);
    const calls = v.tool_calls.map((c: unknown, i): ToolCall => {
      const call = c as { name?: unknown; arguments?: unknown };
      if (typeof call?.name !== "string") throw unreadable(`tool call ${i} has no name`);
      return {
        id: `call_${suffix}_${i}`,
        type: "function",
        function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) },
      };
    });
    return { kind: "tool_calls", calls };
  }
  if ("content" in v) {
    if (contentIsJson) return { kind: "content", content: JSON.stringify(v.content) };
    if (typeof v.content === "string") return { kind: "content", content: v.content };
  }
  throw unreadable("it has neither content nor tool_calls");
}

function unreadable(why: string): ApiError {
  return new ApiError(
    502,
    "server_error",
    `The tab's structured answer could not be read (${why}).`,
    null,
    "invalid_structured_output",
  );
}
