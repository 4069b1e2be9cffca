import type { JobSpec } from "../../shared/protocol/job.js";
import { chargedTokens } from "./usage-bounds.js";

/**
 * `max_tokens` and `stop` hold for the answer as a whole, however many tabs wrote it. The
 * coordinator has no tokenizer, so the tokens already delivered are charged at the one bound of
 * usage-bounds.ts (`chargedTokens`: one token per UTF-8 byte, the most they can have been): a
 * replacement tab may get fewer tokens than it could have, never more than the client asked for,
 * and the answer's usage (boundUsage) charges the same number for the delivered text.
 */
export function deliveredTokenBound(spec: JobSpec, text: string): number {
  return chargedTokens(spec, text);
}

/** Tokens the next attempt may still generate; 0 or less means the answer is already full. */
export function remainingTokens(spec: JobSpec, delivered: string): number {
  return spec.sampling.max_tokens - deliveredTokenBound(spec, delivered);
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
