import { utf8ByteLength } from "../../shared/protocol/frames.js";
import type { JobSpec, Usage } from "../../shared/protocol/job.js";

/**
 * The coordinator's one bound on tokens, from the text it sent and received (it runs no
 * tokenizer; docs/trust.md, "Coordinator-owned accounting", has the measurements behind that).
 * Everything that counts tokens of an answer uses it: the usage clients see and the credit tabs
 * earn (clamped tab reports), the cut at `max_tokens`, and the budget a replacement tab gets after
 * a failover (answer-budget.ts).
 *
 * It rests on two facts of the served models' byte-level BPE vocabularies:
 *  - every token decodes to at least 1 UTF-8 byte, so `b` bytes of text took at most `b` tokens
 *    (plus the stop token) — `tokensAtMost`. Not one per *character*: a CJK character or an emoji
 *    can take 2–4 byte tokens;
 *  - no token is longer than MAX_TOKEN_BYTES, so `b` bytes took at least ⌈b / 128⌉ — `tokensAtLeast`.
 */

/**
 * Longest token of the served models' vocabularies, in UTF-8 bytes: measured on Qwen3's
 * tokenizer.json (151,669 tokens, longest 128 bytes: 128 spaces; longest non-space token 114
 * characters).
 */
export const MAX_TOKEN_BYTES = 128;

/** Chat template tokens allowed per message (role markers, separators) and per prompt. */
export const TEMPLATE_TOKENS_PER_MESSAGE = 8;
export const TEMPLATE_TOKENS_PER_PROMPT = 32;

export const utf8Bytes = utf8ByteLength;

/** Most tokens `text` can have taken (the stop token not included). */
export function tokensAtMost(text: string): number {
  return utf8Bytes(text);
}

/** Fewest tokens `text` can have taken. */
export function tokensAtLeast(text: string): number {
  return Math.ceil(utf8Bytes(text) / MAX_TOKEN_BYTES);
}

/** Most bytes an answer of `maxTokens` tokens can have: beyond it the tab ran past max_tokens. */
export function answerByteCap(maxTokens: number): number {
  return maxTokens * MAX_TOKEN_BYTES;
}

/**
 * Tokens charged for text whose count the coordinator has from no tab: its upper bound, capped at
 * max_tokens. This is what a replacement's budget is reduced by for the text earlier attempts
 * delivered (answer-budget.ts), so usage never goes below the answer's real token count and never
 * above max_tokens.
 */
export function chargedTokens(spec: Pick<JobSpec, "sampling">, text: string): number {
  return Math.min(spec.sampling.max_tokens, tokensAtMost(text));
}

/** Most prompt tokens the prompt the coordinator sent can be (one token per byte, plus template). */
export function promptTokenCap(spec: JobSpec, continueFrom = ""): number {
  const input = spec.input;
  let bytes = utf8Bytes(continueFrom);
  let messages = 1;
  if (input.kind === "completion") bytes += utf8Bytes(input.prompt);
  else if (input.kind === "embedding") {
    // Each input is read on its own, with the model's own markers (CLS, SEP) around it.
    messages = input.inputs.length;
    for (const text of input.inputs) bytes += utf8Bytes(text);
  } else {
    messages = input.messages.length + 1;
    for (const m of input.messages) bytes += utf8Bytes(m.content) + utf8Bytes(m.name ?? "");
  }
  return bytes + messages * TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_PER_PROMPT;
}

/** Completion tokens an answer of `answerBytes` bytes can have taken, under `maxTokens`. */
export function completionBounds(
  answerBytes: number,
  maxTokens: number,
): { min: number; max: number } {
  const max = Math.min(maxTokens, answerBytes + 1);
  const min = Math.min(max, Math.ceil(answerBytes / MAX_TOKEN_BYTES));
  return { min, max };
}

export interface BoundedUsage {
  /** The whole answer's usage: what the client sees. */
  usage: Usage;
  /** Completion tokens of the reporting tab's own part (after `continueFrom`): its credit. */
  ownTokens: number;
  /**
   * The tab's report was outside what the coordinator observed: over a bound, or the delivered
   * text counted under its least (which could only serve to write more than max_tokens leaves).
   */
  inflated: boolean;
}

/** What a finishing tab says about the tokens of the answer (job.done). */
export interface UsageReport {
  prompt_tokens: number;
  completion_tokens: number;
  continuedTokens?: number;
}

/**
 * The usage of a finished answer as the coordinator counts it; the result is what clients and
 * credit see. `attemptStart` is where the reporting tab's part begins in `answer` (0 unless it took
 * over after a failover). As WebLLM counts, the tab's `completion_tokens` are the tokens it
 * generated, clamped into its part's bounds (and the budget its `job.assign` gave it); the text
 * delivered before it is the tab's `continuedTokens` when it counted them, clamped into that text's
 * bounds, else that text's upper bound (`chargedTokens`) — a tab that says nothing never makes the
 * earlier tokens free, and one that says too much is clamped. `counts`: the attempt was told the
 * whole answer's budget (protocol 8's `answerMaxTokens`), so its own part may be what its count of
 * the delivered text left; an older tab's was what the coordinator's bound left. A part with no
 * text is 0 tokens, whatever the tab says: it earns no credit and the client pays for none.
 */
export function boundUsage(
  reported: UsageReport | null,
  spec: JobSpec,
  answer: string,
  attemptStart = 0,
  counts = false,
): BoundedUsage {
  const before = answer.slice(0, attemptStart);
  const own = answer.slice(attemptStart);
  const charged = before ? chargedTokens(spec, before) : 0;
  const claimedBefore = reported?.continuedTokens;
  const beforeMin = Math.min(charged, tokensAtLeast(before));
  const counted =
    claimedBefore === undefined ? charged : Math.min(charged, Math.max(beforeMin, claimedBefore));
  // The replacement's max_tokens was what the earlier text left (answer-budget.ts): by its own
  // count when it was asked to count (protocol 8's answerMaxTokens), else by the coordinator's bound.
  const budget = before
    ? Math.max(1, spec.sampling.max_tokens - (counts ? counted : charged))
    : spec.sampling.max_tokens;
  const c = completionBounds(utf8Bytes(own), budget);
  const promptMax = promptTokenCap(spec, before);
  const claimedC = reported?.completion_tokens ?? c.max;
  const claimedP = reported?.prompt_tokens ?? 0;
  // An empty part is no tokens to credit or bill: a claim of one (its stop token) is not a lie,
  // but nothing was delivered for it (docs/trust.md).
  const ownTokens = own ? Math.min(c.max, Math.max(c.min, claimedC)) : 0;
  const completion = Math.min(spec.sampling.max_tokens, counted + ownTokens);
  const prompt = Math.min(promptMax, Math.max(0, claimedP));
  return {
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
    },
    ownTokens,
    inflated:
      claimedC > c.max ||
      claimedP > promptMax ||
      // More tokens than the text has bytes, or fewer than it can have been. (More than
      // max_tokens is only clamped: an earlier tab may have run past it within the byte cap.)
      (claimedBefore ?? 0) > tokensAtMost(before) ||
      (claimedBefore ?? beforeMin) < beforeMin,
  };
}

/**
 * The longest prefix of `text` that fits in `bytes` UTF-8 bytes, cut on a character boundary.
 */
export function cutToBytes(text: string, bytes: number): string {
  if (bytes <= 0) return "";
  if (utf8Bytes(text) <= bytes) return text;
  let used = 0;
  let end = 0;
  for (const ch of text) {
    const n = utf8Bytes(ch);
    if (used + n > bytes) break;
    used += n;
    end += ch.length;
  }
  return text.slice(0, end);
}
