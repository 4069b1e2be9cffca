import type { ReportedLogprob, TokenLogprob } from "../protocol/logprobs.js";
import type { Evidence } from "./reputation.js";

/**
 * Confirming a serving tab's claimed logprobs (docs/trust.md, "Claimed logprobs"): a verifier
 * re-computes, for each token it scores, the entry WebLLM would have reported — under the job's
 * grammar, `logit_bias`, penalties and temperature (`ReportedLogprob`) — and the coordinator
 * compares the two. Each claimed entry that pairs with a re-computed one is one comparison; it is
 * misreported when its value, or an alternative's value at the same rank, is off by more than the
 * tolerance, or when it names an alternative the verifier does not have among its likeliest and
 * that is clearly above where the verifier's list ends (`madeUpAlternative`).
 */

/** What an audit keeps of a claimed entry: the token, its value, its alternatives' values and texts. */
export interface ClaimedLogprob {
  token: string;
  logprob: number;
  top: number[];
  /** The alternatives' texts, in the order of `top` (absent in audits kept before 2026-12-02). */
  topTokens?: string[];
}

/** The stored form of claimed entries. */
export function claimedOf(entries: TokenLogprob[]): ClaimedLogprob[] {
  return entries.map((e) => ({
    token: e.token,
    logprob: e.logprob,
    top: e.top.map((t) => t.logprob),
    topTokens: e.top.map((t) => t.token),
  }));
}

/**
 * Below this temperature the values are not compared: a distribution divided by WebLLM's 1e-6 is
 * 0 for the likeliest token and −∞ for the rest, which the coherence checks already hold a greedy
 * claim to (edge/region/job-logprobs.ts).
 */
export const MIN_COMPARED_TEMPERATURE = 0.05;

/**
 * Values below this are compared as this: WebLLM takes the log of a float32 probability, which
 * underflows to −∞ (reported −9999) near −103, while a verifier computing in float64 gets a finite
 * number; both mean "never".
 */
const FLOOR = -30;

/**
 * How far an honest claim may be from an honest re-computation, in nats: 1 plus a tenth of the
 * value (rare tokens' logits are the least stable across GPUs), divided by the temperature below
 * 1 — the logits' own disagreement between GPUs is divided by it too. Not measured between GPU
 * classes yet (one GPU and the same engine agree to 0.01 nat: test/browser/real-engine.test.ts);
 * chosen wide, so a liar it catches states values far from the model's (a made-up "certain").
 */
export function logprobTolerance(reported: number, temperature: number): number {
  return (1 + 0.1 * Math.abs(Math.max(FLOOR, reported))) / Math.min(1, temperature);
}

/** How far `claimed` is above `reported`, both floored as WebLLM's underflow reads them. */
function above(claimed: number, reported: number): number {
  return Math.max(FLOOR, claimed) - Math.max(FLOOR, reported);
}

function apart(claimed: number, reported: number, temperature: number): boolean {
  return Math.abs(above(claimed, reported)) > logprobTolerance(reported, temperature);
}

/**
 * How many re-computed tokens ahead a claimed entry is looked for. WebLLM gives one entry per
 * stream chunk (the chunk's last token: a character split over two tokens has one entry, for its
 * second), so claimed entries are a subsequence of the tokens; a tab whose sampling took a
 * tokenization the encoder does not (rare) has entries that pair with nothing, and is skipped.
 */
const LOOKAHEAD = 4;

/**
 * At least this share of the claimed entries met within the scored tokens must pair with a
 * re-computed token (by text, in order). Below it, with at least `MIN_ENTRIES_FOR_PAIRING` met,
 * every unpaired one counts as misreported: entries naming tokens the answer's tokenization does
 * not have would otherwise escape every comparison.
 */
const MIN_PAIRED_SHARE = 0.5;
const MIN_ENTRIES_FOR_PAIRING = 8;

export interface LogprobComparison {
  /** Claimed entries compared with a re-computed one (and unpaired ones counted against). */
  compared: number;
  misreported: number;
}

/**
 * Pair the claimed entries with the verifier's re-computed ones by token text, in order, and
 * count the misreported. Claimed entries past the last re-computed token (the audit scores at most
 * `maxAuditTokens`) are not met.
 */
export function compareLogprobs(
  claimed: readonly ClaimedLogprob[],
  reported: readonly ReportedLogprob[],
  temperature: number,
): LogprobComparison {
  if (temperature < MIN_COMPARED_TEMPERATURE) return { compared: 0, misreported: 0 };
  let j = 0;
  let paired = 0;
  let unpaired = 0;
  let misreported = 0;
  for (const entry of claimed) {
    if (j >= reported.length) break;
    let k = j;
    while (k < reported.length && k < j + LOOKAHEAD && reported[k]!.token !== entry.token) k++;
    if (k >= reported.length || k >= j + LOOKAHEAD) {
      // Not found within reach: past the scored tokens when the search ran off their end.
      if (j + LOOKAHEAD > reported.length) break;
      unpaired++;
      continue;
    }
    const r = reported[k]!;
    paired++;
    // Rank by rank: the values are the distribution's order statistics, so two honest GPUs agree
    // on each rank's value even where a near-tie swaps which tokens hold them.
    const ranks = Math.min(entry.top.length, r.top.length);
    let topApart = false;
    for (let i = 0; i < ranks && !topApart; i++)
      topApart = apart(entry.top[i]!, r.top[i]!, temperature);
    if (
      apart(entry.logprob, r.logprob, temperature) ||
      topApart ||
      madeUpAlternative(entry, r, temperature)
    )
      misreported++;
    j = k + 1;
  }
  const met = paired + unpaired;
  if (met >= MIN_ENTRIES_FOR_PAIRING && paired < MIN_PAIRED_SHARE * met) {
    return { compared: met, misreported: misreported + unpaired };
  }
  return { compared: paired, misreported };
}

/**
 * Does the claimed entry name an alternative the model does not have there? Each claimed text is
 * looked for among the verifier's likeliest tokens (it re-computes `SERVED_TOP_LOGPROBS`, more
 * than a job asks for: webllm-fields.ts `reportSettings`), each of the verifier's taken once. One
 * not among them is made up unless its rank's value is within the tolerance of the verifier's
 * last — a near-tie with the first token below the verifier's list, which another GPU may rank
 * the other way. So the texts a stranger's tab puts in `top_logprobs` are the model's, except
 * among near-ties at the list's end (no text is compared with a verifier from before 2026-12-02).
 */
function madeUpAlternative(
  entry: ClaimedLogprob,
  r: ReportedLogprob,
  temperature: number,
): boolean {
  const names = entry.topTokens;
  const theirs = r.topTokens;
  if (!names || !theirs || theirs.length !== r.top.length || theirs.length === 0) return false;
  const pool = new Map<string, number>();
  for (const t of theirs) pool.set(t, (pool.get(t) ?? 0) + 1);
  const last = r.top[r.top.length - 1]!;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const left = pool.get(name) ?? 0;
    if (left > 0) {
      pool.set(name, left - 1);
      continue;
    }
    // Past the verifier's list a claimed rank is no higher than its last: never made up.
    if (i >= r.top.length) continue;
    if (above(r.top[i]!, last) > logprobTolerance(last, temperature)) return true;
  }
  return false;
}

/** One audit's evidence about claimed logprobs (a stream of its own in reputation.ts). */
export function logprobEvidence(c: LogprobComparison): Partial<Evidence> {
  return { logprobs: c.compared, misreportedLogprobs: c.misreported };
}
