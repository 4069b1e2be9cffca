import type { ChatCompletionMessageParam } from "@mlc-ai/web-llm";
import type { ChatMessage, FinishReason, Sampling } from "../../shared/protocol/job.js";
import {
  MAX_LOGPROB_TOKEN_BYTES,
  MIN_LOGPROB,
  SERVED_TOP_LOGPROBS,
  type ReportedLogprob,
  type TokenLogprob,
} from "../../shared/protocol/logprobs.js";
import type { ReportSettings, ReportedStep } from "./teacher-forcer.js";
import type { ReportingParts } from "./webllm-api.js";

/*
 * A job's fields as WebLLM takes them, and WebLLM's answers (finish reasons, logprob entries) as
 * the protocol carries them.
 */

export function toWebLLMMessage(m: ChatMessage): ChatCompletionMessageParam {
  const name = m.name ? { name: m.name } : {};
  switch (m.role) {
    case "system":
      return { role: "system", content: m.content };
    case "user":
      return { role: "user", content: m.content, ...name };
    case "assistant":
      return { role: "assistant", content: m.content, ...name };
    case "tool":
      // The coordinator writes tool results as user messages (edge/openai/tool-calls.ts), so this
      // only serves older jobs; WebLLM requires the field.
      return { role: "tool", content: m.content, tool_call_id: "" };
  }
}

/**
 * The job's sampling fields as WebLLM takes them. A JSON constraint becomes WebLLM's JSON mode
 * with a schema (`{type: "json_object", schema: <JSON string>}`), which xgrammar compiles into a
 * grammar that masks every token leaving the schema. WebLLM has no `json_schema` type of its own.
 */
export function samplingFields(s: Sampling) {
  return {
    max_tokens: s.max_tokens,
    temperature: s.temperature,
    top_p: s.top_p,
    seed: s.seed,
    stop: s.stop && s.stop.length ? s.stop : undefined,
    presence_penalty: s.presence_penalty,
    frequency_penalty: s.frequency_penalty,
    logit_bias: s.logit_bias,
    response_format: s.constraint
      ? { type: "json_object" as const, schema: JSON.stringify(s.constraint.schema) }
      : undefined,
  };
}

/**
 * WebLLM's logprobs fields for a job that asked for them. WebLLM records a token's log-probability
 * only when `top_logprobs` > 0 (its sampler computes them with the alternatives), so it is asked
 * for at least 1 and the entries are cut back to what the job asked for (`logprobEntry`). WebLLM
 * allows 0..5; the coordinator refuses more (docs/api.md).
 */
export function logprobsFields(s: Sampling) {
  return s.logprobs ? { logprobs: true, top_logprobs: Math.max(1, s.logprobs.top) } : {};
}

/**
 * The settings WebLLM reported a job's logprobs under (0.2.79–0.2.86 `sampleFromRawLogits` with
 * `postInitAndCheckGenerationConfigValues`): the job's temperature, else the model's; the job's
 * penalties — when it gives one of presence and frequency, the other is 0 — else the model's; the
 * model's repetition penalty (the API has none). `top` is the most alternatives WebLLM serves,
 * whatever the job asked for: the coordinator compares the serving tab's values rank by rank (its
 * first ranks), and looks for each alternative's text among the verifier's likeliest, so a longer
 * list leaves fewer near-ties at its end (shared/trust/logprob-agreement.ts).
 */
export function reportSettings(
  s: Sampling,
  model: Omit<ReportingParts, "decode">,
): ReportSettings | undefined {
  if (!s.logprobs) return undefined;
  const penalties = s.presence_penalty !== undefined || s.frequency_penalty !== undefined;
  return {
    temperature: s.temperature ?? model.temperature,
    presencePenalty: penalties ? (s.presence_penalty ?? 0) : model.presencePenalty,
    frequencyPenalty: penalties ? (s.frequency_penalty ?? 0) : model.frequencyPenalty,
    repetitionPenalty: model.repetitionPenalty,
    top: SERVED_TOP_LOGPROBS,
  };
}

/**
 * The re-computed entry of forced token `id`, as the protocol carries it, bounded as the serving
 * tab's are; `decode` gives a token id's text as WebLLM names its entries (`tokenizer.decode` of
 * the one id), the forced token's and the alternatives'.
 */
export function reportedEntry(
  step: ReportedStep,
  id: number,
  decode: (id: number) => string,
): ReportedLogprob {
  const top = step.top.slice(0, SERVED_TOP_LOGPROBS);
  return {
    token: boundedToken(decode(id)),
    logprob: boundedLogprob(step.logprob),
    top: top.map(boundedLogprob),
    topTokens: step.topIds.slice(0, top.length).map((id) => boundedToken(decode(id))),
  };
}

/** A value within the protocol's bounds: -Infinity (a masked token) is OpenAI's -9999. */
function boundedLogprob(v: number): number {
  return Number.isNaN(v) ? MIN_LOGPROB : Math.min(0, Math.max(MIN_LOGPROB, v));
}

/** A token's text cut to the protocol's byte bound, at a character boundary. */
function boundedToken(token: string): string {
  const bytes = new TextEncoder().encode(token);
  if (bytes.length <= MAX_LOGPROB_TOKEN_BYTES) return token;
  let text = new TextDecoder().decode(bytes.slice(0, MAX_LOGPROB_TOKEN_BYTES));
  // A cut multi-byte character decodes to U+FFFD (3 bytes): drop it until it fits.
  while (new TextEncoder().encode(text).length > MAX_LOGPROB_TOKEN_BYTES) text = text.slice(0, -1);
  return text;
}

/** One of WebLLM's entries (OpenAI's shape) as the protocol carries it, with `top` alternatives. */
export function logprobEntry(
  e: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] },
  top: number,
): TokenLogprob {
  return {
    token: boundedToken(e.token),
    logprob: boundedLogprob(e.logprob),
    top: e.top_logprobs
      .slice(0, top)
      .map((t) => ({ token: boundedToken(t.token), logprob: boundedLogprob(t.logprob) })),
  };
}

export function toFinishReason(reason: string | null | undefined): FinishReason | null {
  if (reason === "length") return "length";
  if (reason === "abort") return "abort";
  if (reason === "stop" || reason === "tool_calls") return "stop";
  return null;
}
