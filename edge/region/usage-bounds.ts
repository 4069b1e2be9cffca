import { utf8ByteLength } from "../../shared/protocol/frames.js";
import type { JobSpec, Usage } from "../../shared/protocol/job.js";

/**
 * The coordinator's own bounds on a job's token counts, from what it sent and received: a tab's
 * reported usage is a hint clamped into these, and an answer longer than `max_tokens` tokens can be
 * is cut off. Why bounds rather than running the model's tokenizer in the Worker: docs/trust.md
 * ("Coordinator-owned accounting") has the measurements.
 */

/**
 * Longest token of the served models' vocabularies, in UTF-8 bytes: measured on Qwen3's
 * tokenizer.json (151,669 tokens, longest 128 bytes: 128 spaces; longest non-space token 114
 * characters). Every byte-level BPE token decodes to at least 1 byte, so an answer of `b` bytes
 * took at least ceil(b / MAX_TOKEN_BYTES) tokens and at most b + 1 (the stop token).
 */
export const MAX_TOKEN_BYTES = 128;

/** Chat template tokens allowed per message (role markers, separators) and per prompt. */
export const TEMPLATE_TOKENS_PER_MESSAGE = 8;
export const TEMPLATE_TOKENS_PER_PROMPT = 32;

export const utf8Bytes = utf8ByteLength;

/** Most bytes an answer of `maxTokens` tokens can have: beyond it the tab ran past max_tokens. */
export function answerByteCap(maxTokens: number): number {
  return maxTokens * MAX_TOKEN_BYTES;
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
  usage: Usage;
  /** The tab's report was outside what the coordinator observed (inflated). */
  inflated: boolean;
}

/** The tab's usage clamped into the coordinator's bounds; the result is what clients and credit see. */
export function boundUsage(
  reported: Pick<Usage, "prompt_tokens" | "completion_tokens"> | null,
  spec: JobSpec,
  answer: string,
): BoundedUsage {
  const c = completionBounds(utf8Bytes(answer), spec.sampling.max_tokens);
  const promptMax = promptTokenCap(spec, answer);
  const claimedC = reported?.completion_tokens ?? c.max;
  const claimedP = reported?.prompt_tokens ?? 0;
  const completion = Math.min(c.max, Math.max(c.min, claimedC));
  const prompt = Math.min(promptMax, Math.max(0, claimedP));
  return {
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
    },
    inflated: claimedC > c.max || claimedP > promptMax,
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
