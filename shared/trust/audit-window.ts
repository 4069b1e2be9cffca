import { utf8ByteLength } from "../protocol/frames.js";
import { keyedUniform } from "./keyed-prng.js";

/** Up to this many bytes a token, an answer is short enough to take the tab's count of it. */
export const TRUSTED_COUNT_BYTES_PER_TOKEN = 8;

/**
 * Which part of a long answer an audit scores (docs/trust.md, "Audit windows"). A verifier
 * re-scores at most `maxAuditTokens` tokens; scoring always the first ones let a tab answer
 * honestly for 128 tokens and write anything after — no audit looked there. So half the audits of
 * an answer that may be longer than one window start at a keyed point instead: the text before it
 * is sent as `prefix` (the verifier reads it as the start of the reply) and the window's tokens are
 * scored in place. The point is keyed (the tab cannot know where a check will look), uniform over
 * the answer's characters, and moved back to the start of a word when there is one near, so the
 * window's first token is one the encoder would cut there too.
 *
 * Returns the window's start, a character index into `text` (0: the answer's start, as before).
 * An answer within one window is scored whole: one of at most `maxAuditTokens` bytes surely is
 * (every token is at least one byte), and one the tab counted within `maxAuditTokens` tokens
 * (`claimedTokens`, its bounded completion tokens) is taken at its word while it is short —
 * at most `maxAuditTokens` × 8 bytes, twice a typical English token's bytes — since a window
 * starting inside it would leave its start unscored for nothing. A tab that under-counts to keep
 * its answers unwindowed earns less for them and can hide at most that many bytes' tail.
 */
export function auditWindowStart(
  key: string,
  jobId: string,
  text: string,
  maxAuditTokens: number,
  claimedTokens: number,
): number {
  const bytes = utf8ByteLength(text);
  if (bytes <= maxAuditTokens) return 0;
  const short = bytes <= maxAuditTokens * TRUSTED_COUNT_BYTES_PER_TOKEN;
  if (short && claimedTokens <= maxAuditTokens) return 0;
  const u = keyedUniform(key, "audit-window", jobId);
  if (u < 0.5) return 0;
  const point = Math.floor(((u - 0.5) / 0.5) * text.length);
  // Back to the whitespace before a word, within WORD_REACH characters: the window starts with
  // " word", as the encoder cuts it. Text written without spaces (Chinese, Japanese, Thai, a long
  // URL) has none there: the window starts at the point itself, on a character (never between the
  // two halves of a surrogate pair) — else such an answer would always be scored from its start.
  // A cut inside what the encoder would make one token leaves the window's first token a
  // fragment: the coordinator does not judge a window's first token (audits.ts).
  for (let at = point; at > 0 && at > point - WORD_REACH; at--)
    if (/\s/.test(text[at]!) && !/\s/.test(text[at - 1]!)) return at;
  return isLowSurrogate(text.charCodeAt(point)) ? point - 1 : point;
}

/** How far back a window's start looks for a word's leading whitespace. */
const WORD_REACH = 64;

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
