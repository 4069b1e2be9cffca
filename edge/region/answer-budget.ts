import type { JobSpec } from "../../shared/protocol/job.js";
import { COUNTED_CONTINUATION_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { chargedTokens, tokensAtLeast } from "./usage-bounds.js";

/** A job's spec as far as its budget goes (a continuation's request has no id yet). */
type Budgeted = Pick<JobSpec, "sampling">;

/**
 * `max_tokens` and `stop` hold for the answer as a whole, however many tabs wrote it. The
 * coordinator has no tokenizer, so the tokens already delivered are charged at the one bound of
 * usage-bounds.ts (`chargedTokens`: one token per UTF-8 byte, the most they can have been): a
 * replacement tab may get fewer tokens than it could have, never more than the client asked for,
 * and the answer's usage (boundUsage) charges the same number for the delivered text.
 *
 * That bound is about 4 times the real count for English text (Qwen3's tokenizer: 4.19 bytes per
 * token over README.md, 3.91 over docs/failure-handling.md), so an answer whose tab left after
 * `max_tokens` bytes would end at the failover with a quarter of what the client asked for. A tab
 * that has a tokenizer counts instead (protocol 8): it is told the whole answer's `max_tokens`
 * (`answerMaxTokens`) and writes what its own count of the delivered text leaves. Its count is a
 * claim like any tab's: the whole answer stays within max_tokens' bytes (the job's byte cap), the
 * client's usage within max_tokens (boundUsage), so a tab that counts too few can make the answer no
 * longer than a first tab that ignored max_tokens could.
 */
export function deliveredTokenBound(spec: Budgeted, text: string): number {
  return chargedTokens(spec, text);
}

/** Tokens the next attempt may still generate by the coordinator's bound; ≤ 0: maybe full. */
export function remainingTokens(spec: Budgeted, delivered: string): number {
  return spec.sampling.max_tokens - deliveredTokenBound(spec, delivered);
}

/** The delivered text is max_tokens long whatever the tokenizer: the answer ends here. */
export function answerIsFull(spec: Budgeted, delivered: string): boolean {
  return tokensAtLeast(delivered) >= spec.sampling.max_tokens;
}

/**
 * The delivered text may be the whole answer by the coordinator's bound (a token per byte), and
 * only a tab that counts it can say whether it is: no other tab may take the job, and a job that
 * runs out of tabs to try ends as it stands, with "length" (job-machine.ts).
 */
export function onlyACountCanSay(spec: Budgeted, delivered: string): boolean {
  return !!delivered && remainingTokens(spec, delivered) <= 0;
}

/**
 * Whether a tab speaking `protocol` may take the job's next attempt: any tab while the
 * coordinator's bound leaves budget; once it does not, only a tab that counts the delivered text
 * (an older tab would have to be given a budget the client did not grant).
 */
export function mayContinueOn(protocol: number, spec: Budgeted, delivered: string): boolean {
  return protocol >= COUNTED_CONTINUATION_SINCE_PROTOCOL || !onlyACountCanSay(spec, delivered);
}

/** What a tab is sent for an attempt: the job with its budget, and the whole answer's budget. */
export interface AttemptBudget {
  job: JobSpec;
  /** Protocol 8, after a failover: the client's max_tokens for the whole answer. */
  answerMaxTokens?: number;
}

/**
 * The spec a tab gets for an attempt: after a failover, `max_tokens` is what the coordinator's
 * bound leaves (at least 1: a tab that counts writes by `answerMaxTokens` instead, and an older
 * tab gets no attempt without budget, mayContinueOn).
 */
export function budgetForAttempt(
  spec: JobSpec,
  delivered: string,
  protocol: number,
): AttemptBudget {
  if (!delivered) return { job: spec };
  const left = Math.max(1, remainingTokens(spec, delivered));
  const job = { ...spec, sampling: { ...spec.sampling, max_tokens: left } };
  return protocol >= COUNTED_CONTINUATION_SINCE_PROTOCOL
    ? { job, answerMaxTokens: spec.sampling.max_tokens }
    : { job };
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
