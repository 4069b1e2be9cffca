import type { Evidence } from "./reputation.js";

/**
 * Whether a tab's completion-token count agrees with a verifier's count of the same answer: the
 * count half of a text audit (edge/region/audits.ts). The coordinator runs no tokenizer and only
 * bounds a tab's `completion_tokens` by one token per UTF-8 byte of its answer (edge/region/
 * usage-bounds.ts) — ~3.5× the real count of English text, and clients pay and tabs are credited
 * by that count. The verifier already tokenizes the claimed answer to re-score it, so its count
 * (`answerTokens`, the whole answer it was sent, stop token not counted) confirms the claim.
 *
 * Why a claim over ⌈1.25 × counted⌉ + 6 is inflated, and nothing under it:
 *  - +1: WebLLM's `completion_tokens` counts the stop token it generated; the verifier's encode of
 *    the text has none.
 *  - +1: a token at the answer's edges may not survive decode → encode as one (a leading space
 *    merged differently, a token the detokenizer drops or normalises, a partial UTF-8 byte token).
 *  - +4: a conversation template's stop *string* that is not one stop token (Llama-2's "[INST]"):
 *    WebLLM generates and counts its tokens and cuts them from the text (review, session 14: with
 *    +2 an honest answer of three tokens ending so would have counted as inflated).
 *  - ×1.25: sampling may pick a non-canonical tokenization ("un" + "likely" where the encoder
 *    merges "unlikely"); each such pick is one token more than the verifier counts. Audited jobs
 *    are sampled at temperature ≤ 1 (`maxAuditTemperature`), where a model puts little mass on
 *    non-canonical splits — a few in a hundred tokens at most — so 25% leaves a wide margin.
 * The lie the bound is there to catch is the coordinator's own bound: one token per byte is ~3.5×
 * the count of English text, ~3× of code; even a claim of twice the real count is caught on any
 * answer of a few tokens or more. A tab that inflates by less than 25% earns that much, no more.
 * Grammar-constrained answers are never compared (the coordinator keeps no claim for them): a
 * grammar may force splits an encoder would merge, honestly and often.
 */
export const COUNT_TOLERANCE = 1.25;
export const COUNT_SLACK = 6;

/** Most completion tokens an honest tab can report for an answer of `counted` tokens. */
export function mostHonestTokens(counted: number): number {
  return Math.ceil(COUNT_TOLERANCE * counted) + COUNT_SLACK;
}

export function isInflatedCount(claimed: number, counted: number): boolean {
  return claimed > mostHonestTokens(counted);
}

/** One compared count's evidence: one count, inflated or not. */
export function countEvidence(claimed: number, counted: number): Partial<Evidence> {
  return { counts: 1, inflatedCounts: isInflatedCount(claimed, counted) ? 1 : 0 };
}
