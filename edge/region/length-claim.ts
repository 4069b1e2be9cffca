import { DEFAULT_MODELS, defaultModel } from "../../shared/models/catalog.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { utf8Bytes } from "./usage-bounds.js";

/** The smallest context window of any WebLLM model: what an unknown model is assumed to have. */
const MIN_CONTEXT_TOKENS = Math.min(
  ...DEFAULT_MODELS.map((m) => m.overrides?.context_window_size ?? Infinity),
);
/** Tokens the chat template adds around the messages, generously. */
const TEMPLATE_TOKENS = 256;

/**
 * Why an answer a tab said ended at `length` cannot have, or null when it may be true. `length`
 * tells the client its answer was cut at `max_tokens` (clients continue or retry on it), and an
 * honest tab says it only when the answer reached `max_tokens` or the model's context filled.
 * A token writes about a byte or more (English text ~4; a grammar admits no empty token; a token
 * that writes nothing — a special one, half a character — is rare, hence the margin of half), and
 * the prompt's P bytes are at most P tokens. So an answer (the whole answer, with any text earlier
 * tabs wrote, which counts toward `max_tokens` too) of fewer bytes than half of `max_tokens`,
 * while prompt and answer could not fill the model's context, was not cut there: the tab lied or
 * stopped early. A client's stop string lets WebLLM hold back text that might begin it, so the
 * longest stop string's bytes count as written.
 *
 * Found twice: a tool call to a tool never offered, said to end at `length` after one token of
 * 4,096, reached the client as text and the tab was credited (session 13, for constrained answers
 * only); a plain "Paris" said to end at `length`, 1 of 256 tokens, and a request with a stop
 * string passed the first case again (session 14; edge/openai/tab-claims.test.ts).
 */
export function impossibleLength(
  spec: JobSpec,
  text: string,
  /** The context window the operator's catalog gives the model (its EXTRA_MODELS record). */
  catalogContext?: number,
): string | null {
  const held = Math.max(0, ...(spec.sampling.stop ?? []).map(utf8Bytes));
  const answer = utf8Bytes(text) + held;
  const maxTokens = spec.sampling.max_tokens;
  if (answer * 2 >= maxTokens) return null;
  // The record the tabs load: the operator's when it has one (review, session 14: judging by
  // WebLLM's record faulted honest tabs of an operator's shorter-context build of a model).
  const context =
    catalogContext ??
    defaultModel(spec.model)?.overrides?.context_window_size ??
    MIN_CONTEXT_TOKENS;
  if (utf8Bytes(JSON.stringify(spec.input)) + answer + TEMPLATE_TOKENS >= context) return null;
  return `the tab said its answer reached max_tokens (${maxTokens}), but its ${answer} bytes are fewer than half that many tokens and the context could not be full`;
}
