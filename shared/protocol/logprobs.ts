import { z } from "zod";
import { utf8ByteLength } from "./frames.js";

/**
 * Token log-probabilities a tab returns for a job that asked for them (`sampling.logprobs`), as
 * OpenAI's chat `logprobs.content` carries them. A tab is a stranger's machine, so every bound the
 * coordinator relies on is in the schema: natural-log values finite and ≤ 0, at most
 * MAX_TOP_LOGPROBS alternatives, token strings of at most MAX_LOGPROB_TOKEN_BYTES. What depends on
 * the job (no more alternatives than it asked for, no more entries than tokens it may emit) is
 * checked by the coordinator (edge/region/job-logprobs.ts).
 */

/** OpenAI's ceiling on `top_logprobs` (the protocol's bound). */
export const MAX_TOP_LOGPROBS = 20;
/**
 * What the tabs' engine gives: WebLLM returns at most 5 alternatives per token, so the API refuses
 * more (400 naming `top_logprobs`) rather than return fewer than asked.
 */
export const SERVED_TOP_LOGPROBS = 5;
/** A token's text (a vocabulary entry is a few bytes; this leaves room for long whitespace runs). */
export const MAX_LOGPROB_TOKEN_BYTES = 64;
/** The lowest value a tab reports (OpenAI reports -9999 for tokens it deems impossible). */
export const MIN_LOGPROB = -9999;

const TokenText = z
  .string()
  .refine(
    (s) => s.length <= MAX_LOGPROB_TOKEN_BYTES && utf8ByteLength(s) <= MAX_LOGPROB_TOKEN_BYTES,
    { error: `a token is at most ${MAX_LOGPROB_TOKEN_BYTES} bytes (UTF-8)` },
  );
/** zod's number refuses NaN and ±Infinity. */
const Logprob = z.number().min(MIN_LOGPROB).max(0);

export const TopLogprobSchema = z.object({ token: TokenText, logprob: Logprob });
export const TokenLogprobSchema = z.object({
  token: TokenText,
  logprob: Logprob,
  /** The most likely tokens at this position, most likely first (as many as the job asked for). */
  top: z.array(TopLogprobSchema).max(MAX_TOP_LOGPROBS),
});
export type TokenLogprob = z.infer<typeof TokenLogprobSchema>;

/**
 * A verifier's re-computation of one scored token's entry (an audit's `reported`, since protocol
 * 10): the token's text as the model's tokenizer decodes it alone, its log-probability under the
 * distribution WebLLM reports logprobs from (after the job's grammar, `logit_bias`, penalties and
 * temperature), and the likeliest values of that distribution, most likely first, with their
 * tokens' texts: the coordinator compares them with what the serving tab claimed
 * (shared/trust/logprob-agreement.ts).
 */
export const ReportedLogprobSchema = z.object({
  token: TokenText,
  logprob: Logprob,
  top: z.array(Logprob).max(SERVED_TOP_LOGPROBS),
  /**
   * The texts of the `top` values' tokens, in the same order (since 2026-12-02; a page from
   * before sends none, and then the serving tab's alternatives' texts are not compared).
   */
  topTokens: z.array(TokenText).max(SERVED_TOP_LOGPROBS).optional(),
});
export type ReportedLogprob = z.infer<typeof ReportedLogprobSchema>;

/** What a job asks for: `top` alternatives per token (0..MAX_TOP_LOGPROBS). */
export const LogprobsRequestSchema = z.object({
  top: z.number().int().min(0).max(MAX_TOP_LOGPROBS),
});

/** Entries in one job.logprobs frame (a job has at most max_tokens ≤ 4096 of them in all). */
export const MAX_FRAME_ENTRIES = 4096;

/**
 * Tab → coordinator, `job.logprobs`: the next entries of a job's log-probabilities, in token order,
 * sent before `job.done` in as many frames as the frame size limit needs. The tab sends a piece's
 * entries right after its `job.delta`, so a stream carries each piece with its own (entries ahead
 * of the text the coordinator holds are refused: a token is at least one byte). Sent only for a job
 * whose sampling asked for logprobs, so a coordinator that does not know the frame never receives
 * it.
 */
export const JobLogprobsSchema = z.object({
  type: z.literal("job.logprobs"),
  jobId: z.string().min(1).max(64),
  entries: z.array(TokenLogprobSchema).min(1).max(MAX_FRAME_ENTRIES),
});
export type JobLogprobs = z.infer<typeof JobLogprobsSchema>;

/** Budget of one job.logprobs frame's entries as JSON, under MAX_FRAME_BYTES with room to spare. */
const FRAME_ENTRIES_BYTES = 192 * 1024;

/**
 * A job's entries as the job.logprobs frames a tab sends (in order, each under the frame limit and
 * MAX_FRAME_ENTRIES).
 * Worst case per entry (21 tokens of 64 bytes, escaped) is far below the budget, so every frame
 * holds at least one entry.
 */
export function logprobsFrames(jobId: string, entries: TokenLogprob[]): JobLogprobs[] {
  const frames: JobLogprobs[] = [];
  let batch: TokenLogprob[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = utf8ByteLength(JSON.stringify(entry)) + 1;
    if (
      batch.length &&
      (bytes + size > FRAME_ENTRIES_BYTES || batch.length === MAX_FRAME_ENTRIES)
    ) {
      frames.push({ type: "job.logprobs", jobId, entries: batch });
      batch = [];
      bytes = 0;
    }
    batch.push(entry);
    bytes += size;
  }
  if (batch.length) frames.push({ type: "job.logprobs", jobId, entries: batch });
  return frames;
}
