import type { JobSpec } from "../../shared/protocol/job.js";
import { utf8ByteLength } from "../../shared/protocol/frames.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";
import type { Rng } from "../../shared/scheduling/prng.js";
import { expectedOutput, tokenLogprob } from "../../test/support/deterministic-engine.js";

/**
 * What each kind of bench tab writes for a job (scripts/trust/trust-tab.ts streams it): the text,
 * the completion-token count it reports on `job.done`, and the log-probability entries it sends
 * when the job asked for them. Kept apart from the tab's connection so each lie is in one place.
 */

export type Kind =
  | "honest"
  | "spam"
  | "smaller"
  | "truncation"
  | "speed-lie"
  | "refusal"
  | "count-inflate"
  | "logprob-lie"
  | "framer";

/**
 * The lying kinds, in the order the fleet hands them out (trust-run.ts `fleet`): with 50 tabs the
 * default `--malicious 0.14` gives 7 liars, one of each.
 */
export const MALICIOUS_KINDS: Kind[] = [
  "spam",
  "smaller",
  "truncation",
  "speed-lie",
  "refusal",
  "count-inflate",
  "logprob-lie",
];

/**
 * Kinds whose text is the model's answer: their client answers are right, whatever else they lie
 * about (speed, the token count, the logprobs). A framer lies only as a verifier.
 */
export const RIGHT_TEXT_KINDS: ReadonlySet<Kind> = new Set<Kind>([
  "honest",
  "framer",
  "speed-lie",
  "count-inflate",
  "logprob-lie",
]);

const SPAM = "Visit cheap-pills dot example for the best deals today only";
const REFUSAL = "I'm sorry, but I can't help with that request.";

export function answerOf(kind: Kind, job: JobSpec, rng: Rng): string {
  const honest = expectedOutput(job.input, job.sampling);
  const words = honest.text.split(" ");
  switch (kind) {
    case "honest":
    case "speed-lie":
    case "framer":
    case "count-inflate":
    case "logprob-lie":
      return honest.text;
    case "spam":
      return SPAM;
    case "refusal":
      return REFUSAL;
    case "truncation":
      return words.slice(0, Math.max(2, Math.floor(words.length * 0.4))).join(" ");
    case "smaller":
      // A smaller model: close to the answer, but a good share of its tokens differ.
      return words
        .map((w) =>
          rng.next() < 0.35 ? rng.pick(["perhaps", "basically", "kind", "of", "um"]) : w,
        )
        .join(" ");
  }
}

/** The text as the deterministic engine's tokens: words, each after the first with its space. */
export function tokensOf(text: string): string[] {
  return text.split(" ").map((w, i) => (i === 0 ? w : ` ${w}`));
}

/**
 * The `completion_tokens` a tab reports. The count liar reports one token per UTF-8 byte — the
 * most the coordinator accepts without a verifier (usage-bounds.ts), ~6× the deterministic
 * engine's count of these answers — since credit is paid on the reported count.
 */
export function reportedTokens(kind: Kind, text: string): number {
  return kind === "count-inflate" ? utf8ByteLength(text) : tokensOf(text).length;
}

/**
 * The entries a tab sends for `tokens` of a job that asked for `top` alternatives. Every tab but
 * the logprob liar sends what its model gives for the tokens it wrote: the deterministic engine's
 * (`tokenLogprob`, −0.05 for its own token; a verifier re-computes the same), so honest tabs are
 * not blamed — and the answer-changing liars, whose "model" is as sure of its own words, are
 * misreported on their foreign words too, as a real smaller model would be.
 *
 * The logprob liar does not compute them (a softmax a token saved, or an engine without them) and
 * makes them up: each token it wrote a long shot at −4 behind a made-up favourite at −0.5, as
 * edge/region/logprob-audits.test.ts's liar. Coherent as one distribution (in order, sum ≤ 1, the
 * token no likelier than the first), so only a re-computation tells; the model gives −0.05, ~4
 * nats off, beyond the ~2 nats of tolerance at the unstated temperature (0.5). Not "certain" (0):
 * that is within 0.05 of the model's −0.05 here, so nearly right and rightly not caught.
 */
export function logprobEntries(kind: Kind, tokens: string[], top: number): TokenLogprob[] {
  if (kind !== "logprob-lie") return tokens.map((t) => tokenLogprob(t, top));
  return tokens.map((token) => {
    const made = [
      { token: " indeed", logprob: -0.5 },
      { token, logprob: -4 },
      ...Array.from({ length: Math.max(0, top - 2) }, (_, i) => ({
        token: `alt${i + 1}`,
        logprob: -5 - i,
      })),
    ];
    return { token, logprob: -4, top: made.slice(0, top) };
  });
}
