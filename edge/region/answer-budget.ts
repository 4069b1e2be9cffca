import type { JobSpec } from "../../shared/protocol/job.js";

/**
 * `max_tokens` and `stop` hold for the answer as a whole, however many tabs wrote it. The
 * coordinator has no tokenizer, so it bounds the tokens already delivered from above by the
 * delivered characters: a token the engine streamed decodes to at least one character (WebLLM
 * holds back a partial UTF-8 sequence until it completes). The bound is the tab-independent
 * measure of what was spent; a replacement tab may get fewer tokens than it could have, never more
 * than the client asked for.
 */
export function deliveredTokenBound(text: string): number {
  return text.length;
}

/** Tokens the next attempt may still generate; 0 or less means the answer is already full. */
export function remainingTokens(spec: JobSpec, delivered: string): number {
  return spec.sampling.max_tokens - deliveredTokenBound(delivered);
}

/** The spec a replacement tab gets: the same job with the budget the earlier attempts left. */
export function specForAttempt(spec: JobSpec, delivered: string): JobSpec {
  if (!delivered) return spec;
  const left = Math.max(1, remainingTokens(spec, delivered));
  return { ...spec, sampling: { ...spec.sampling, max_tokens: left } };
}

/**
 * Where a stop string ends the answer, if one appears in the text so far plus `incoming` (it may
 * straddle the boundary between two attempts, which neither tab can see): the number of characters
 * of `incoming` to keep, or null when no stop string occurs.
 */
export function stopCut(
  delivered: string,
  incoming: string,
  stop: readonly string[] = [],
): number | null {
  let cut: number | null = null;
  for (const s of stop) {
    if (!s) continue;
    const tail = delivered.slice(Math.max(0, delivered.length - (s.length - 1)));
    const at = (tail + incoming).indexOf(s);
    if (at < 0) continue;
    const keep = Math.max(0, at - tail.length);
    if (cut === null || keep < cut) cut = keep;
  }
  return cut;
}
