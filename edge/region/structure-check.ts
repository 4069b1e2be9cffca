import { DEFAULT_MODELS, defaultModel } from "../../shared/models/catalog.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { looselyEnforced } from "../../shared/openai/json-schema.js";
import { ApiError } from "../http/api-error.js";
import { checkedJson, readToolAnswer } from "../openai/structured-answer.js";
import { noClientSawIt, type JobReading } from "./job-reading.js";
import type { JobRow } from "./job-store.js";
import { constraintSchema } from "./job-view.js";

/**
 * A finished attempt's structured answer checked where it arrives, in the Region, before the job
 * ends: a tool envelope or a `response_format` JSON answer the tab decoded under the job's grammar
 * (`sampling.constraint`). An honest tab's answer follows it; one that does not is the tab's fault,
 * and a job whose client has seen none of it yet starts again on another tab (job-reading.ts
 * `restartsOnFailover`) instead of ending with a 502. The Worker checks the answer it sends again
 * (structured-answer.ts): this is where the fault is counted and the client still gets an answer.
 */
export interface BrokenStructure {
  /** What is wrong, in the coordinator's words (the path and what the schema wanted, never the tab's text). */
  problem: string;
  /** The attempt wrote the whole answer and no client has seen it: it can start again elsewhere. */
  restart: boolean;
}

/**
 * What is wrong with the structured answer `row` holds, written whole by the attempt that just
 * said `stop`; null when it follows its schema as far as the tab's grammar holds it, is plain
 * text, or is not this attempt's alone (a streamed JSON answer continued after another tab's text
 * is not one grammar's work, and a client's stop string may cut an honest one).
 */
export function brokenStructure(row: JobRow, finish: "stop" | "length"): BrokenStructure | null {
  if (!row.reading || row.attempt_start_chars > 0) return null;
  // Every finished job passes here: a plain-text one (most) costs one small parse, not the spec's.
  const reading = JSON.parse(row.reading) as JobReading;
  const { mode } = reading;
  if (mode.kind === "text") return null;
  const spec = JSON.parse(row.spec) as JobSpec;
  // A client's stop string may end an honest answer before its JSON closes.
  if (spec.sampling.stop?.length) return null;
  const restart = noClientSawIt(reading);
  if (finish === "length") {
    // A cut answer is not read (it goes out as text, as OpenAI returns one); only one cut where
    // no honest tab could have stopped is the tab's fault (`impossibleLength`).
    const problem = impossibleLength(spec, row.text);
    return problem ? { problem, restart } : null;
  }
  // Where the grammar is looser than the schema an honest answer may fall outside it: then only
  // what the grammar always holds (JSON, the envelope's shape) is held against the tab.
  const full = constraintSchema(spec);
  const schema = full && !looselyEnforced(full) ? full : null;
  try {
    if (mode.kind === "tools") readToolAnswer(row.text, row.id, mode.contentIsJson, schema);
    else checkedJson(row.text, schema, row.id);
    return null;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { problem: err.message.replace(/\.$/, ""), restart };
  }
}

/** The smallest context window of any WebLLM model: what an unknown model is assumed to have. */
const MIN_CONTEXT_TOKENS = Math.min(
  ...DEFAULT_MODELS.map((m) => m.overrides?.context_window_size ?? Infinity),
);
/** Tokens the chat template adds around the messages, generously. */
const TEMPLATE_TOKENS = 256;

/**
 * Why a constrained answer said to end at `length` cannot have: a tab stops at `length` when its
 * answer reached `max_tokens` or the context window filled. Under a grammar every token writes at
 * least one byte (the grammar admits no empty or special token before the end), so an answer of B
 * bytes is at most B tokens, and a prompt of P bytes at most P. A tab that says `length` with half
 * of `max_tokens` in bytes, while prompt and answer could not fill the model's context, lied
 * (review, session 13: a tool call to a tool never offered, said to end at `length` after one
 * token of 4,096, reached the client as text and the tab was credited). Null when it may be true.
 */
function impossibleLength(spec: JobSpec, text: string): string | null {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  const answer = bytes(text);
  const maxTokens = spec.sampling.max_tokens;
  if (answer * 2 >= maxTokens) return null;
  const context = defaultModel(spec.model)?.overrides?.context_window_size ?? MIN_CONTEXT_TOKENS;
  if (bytes(JSON.stringify(spec.input)) + answer + TEMPLATE_TOKENS >= context) return null;
  return `The tab said its answer reached max_tokens (${maxTokens}), but its ${answer} bytes are fewer than half that many tokens and the context could not be full`;
}
