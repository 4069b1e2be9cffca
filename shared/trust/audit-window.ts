import { utf8ByteLength } from "../protocol/frames.js";
import { keyedUniform } from "./keyed-prng.js";

/**
 * Which part of a long answer an audit scores (docs/trust.md, "Audit windows"). A verifier
 * re-scores at most `maxAuditTokens` tokens; scoring always the first ones let a tab answer
 * honestly for 128 tokens and write anything after — no audit looked there. So half the audits of
 * an answer that may be longer than one window start at a keyed point instead: the text before it
 * is sent as `prefix` (the verifier reads it as the start of the reply) and the window's tokens are
 * scored in place. The point is keyed (the tab cannot know where a check will look), uniform over
 * the answer's characters, and moved back to the start of a word, so the window's first token is
 * one the encoder would cut there too.
 *
 * Returns the window's start, a character index into `text` (0: the answer's start, as before).
 * An answer of at most `maxAuditTokens` bytes is always within one window (every token is at
 * least one byte): it is scored whole.
 */
export function auditWindowStart(
  key: string,
  jobId: string,
  text: string,
  maxAuditTokens: number,
): number {
  if (utf8ByteLength(text) <= maxAuditTokens) return 0;
  const u = keyedUniform(key, "audit-window", jobId);
  if (u < 0.5) return 0;
  let at = Math.floor(((u - 0.5) / 0.5) * text.length);
  // Back to the whitespace before a word: the window starts with " word", as the encoder cuts it.
  while (at > 0 && !(/\s/.test(text[at]!) && !/\s/.test(text[at - 1]!))) at--;
  return at;
}
