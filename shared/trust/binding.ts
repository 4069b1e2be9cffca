import type { TrustConfig, TrustState } from "./policy.js";
import { NO_EVIDENCE, addEvidence, judge, type Evidence, type Judgement } from "./reputation.js";
import { isAnonymous } from "./anonymous.js";

/**
 * Whose word can quarantine a tab (docs/trust.md "Binding accusations"). An audit's evidence is
 * only as good as its verifier, and an anonymous `a_…` identity is minted per connection: any
 * socket could answer an audit and, with six "implausible" scores, quarantine an honest tab. So
 * evidence counts toward a quarantine only when it is binding: from a verifier that was, when it
 * answered, a signed identity (its key persists, and so does the evidence about its own answers)
 * that is not suspect or quarantined; or a canary's, judged by the coordinator against an answer
 * two trusted identities confirmed. Evidence from anonymous verifiers still sets how often a tab is
 * checked (suspect: audited more, by trusted verifiers first).
 *
 * A stricter bar — a verifier trusted in TabTrust (PROBATION_JOBS finished jobs) or by the checks
 * of its own answers — was built and measured, and not kept: in bench:trust's young network (50
 * new tabs, liars claiming the best GPU and taking most jobs) no honest tab reached it in 25
 * simulated minutes, no liar was quarantined, 86% of answers came from liars (6.6% with this
 * bar) and suspect liars were audited at 50% (40% audit overhead).
 *
 * A new key pair is free too, so one binding word does not quarantine either: an accusation that
 * would decide a quarantine is held (the subject is suspect at most) until a second binding
 * verifier re-checks the same answer (edge/region/accusations.ts). A verifier whose accusations
 * are contradicted more often than confirmed loses its binding word (`isDiscredited`).
 */

/**
 * A verifier's decisive accusations (those that would have decided a quarantine) that a second
 * binding verifier, re-checking the same answer, confirmed or contradicted.
 */
export interface AccusationCounts {
  confirmed: number;
  contradicted: number;
}

export const NO_ACCUSATIONS: AccusationCounts = { confirmed: 0, contradicted: 0 };

/** What the coordinator knows of a verifier when its answer arrives. */
export interface VerifierStanding {
  /** Its identity: the tab id (`a_…` when anonymous). */
  identity: string;
  /** Its state in the evidence about its own answers (reputation.ts). */
  state: TrustState;
  accusations: AccusationCounts;
}

/**
 * Has a verifier lost its word by its accusations: contradicted at least `contradictionsToUnbind`
 * times, and more often than confirmed? An honest verifier's decisive accusations are confirmed
 * (honest noise all but never decides a quarantine), so such a verifier is a framer or was framed
 * by colluding confirmers more often than honest ones confirmed it.
 */
export function isDiscredited(
  a: AccusationCounts,
  c: Pick<TrustConfig, "contradictionsToUnbind">,
): boolean {
  return a.contradicted >= c.contradictionsToUnbind && a.contradicted > a.confirmed;
}

export function isBindingVerifier(
  v: VerifierStanding,
  c: Pick<TrustConfig, "contradictionsToUnbind">,
): boolean {
  return (
    !isAnonymous(v.identity) &&
    v.state !== "suspect" &&
    v.state !== "quarantined" &&
    !isDiscredited(v.accusations, c)
  );
}

/** The reason's tail of a quarantine held back for want of a binding accusation. */
export const AWAITS_BINDING = "quarantine waits for a signed verifier to confirm";

/** The reason's tail of a quarantine one binding verifier decided, held for a second one. */
export const AWAITS_CONFIRMATION = "quarantine waits for a second verifier to confirm";

/**
 * Would binding evidence `e` decide a quarantine: with it the binding evidence (`binding`)
 * quarantines, without it not? Such an accusation is held until a second verifier confirms it.
 */
export function isDecisive(binding: Evidence, e: Partial<Evidence>, c: TrustConfig): boolean {
  if (judge(binding, c).state === "quarantined") return false;
  return judge(addEvidence(binding, e), c).state === "quarantined";
}

/**
 * The verdict while a decisive accusation waits for its second verifier: suspect (checked more),
 * with the reason the quarantine would have. `accused` is the binding evidence with the accusation.
 */
export function awaitingConfirmation(accused: Evidence, c: TrustConfig): Judgement {
  const j = judge(accused, c);
  return { state: "suspect", pValue: j.pValue, reason: `${j.reason}; ${AWAITS_CONFIRMATION}` };
}

/**
 * What a second binding verifier's evidence (`second`) on an accused answer says of the
 * accusation, given the subject's binding evidence without the accusation (`binding`):
 * - contradicted: it found nothing wrong (no failed check);
 * - confirmed: it would decide the quarantine on its own word, as the accusation would have;
 * - unconfirmed: it found something wrong, but not enough to quarantine. Not a confirmation: an
 *   honest re-score of an honest answer has an implausible token now and then (1.5% of tokens
 *   measured between GPU classes), so "any failed check" would let honest noise complete a
 *   framer's accusation on most long answers.
 */
export type Confirmation = "confirmed" | "contradicted" | "unconfirmed";

export function confirmationOf(
  binding: Evidence,
  second: Partial<Evidence>,
  c: TrustConfig,
): Confirmation {
  if (failedChecksOf(addEvidence(NO_EVIDENCE, second)) === 0) return "contradicted";
  const j = judge(addEvidence(binding, second), c);
  return j.state === "quarantined" ? "confirmed" : "unconfirmed";
}

/**
 * The verdict on an identity from all its evidence (`all`) and the part of it that is binding
 * (`binding`, a subset: every binding piece is also in `all`). A quarantine is decided on binding
 * evidence alone, by the same test and thresholds (`judge`); all evidence decides the rest. So
 * evidence from non-binding verifiers can make a tab at most suspect — when it alone would
 * quarantine, the state is suspect and the reason says it waits for a signed verifier — and can
 * neither make nor, by passing a liar's answers, prevent a quarantine.
 */
export function bindingJudge(all: Evidence, binding: Evidence, c: TrustConfig): Judgement {
  const bound = judge(binding, c);
  if (bound.state === "quarantined") return bound;
  const j = judge(all, c);
  if (j.state !== "quarantined") return j;
  return { state: "suspect", pValue: j.pValue, reason: `${j.reason}; ${AWAITS_BINDING}` };
}

/** Failed checks in a piece of evidence (an audit counts once; each canary, stop, count too). */
export function failedChecksOf(e: Evidence): number {
  return (
    e.badStops +
    e.failedCanaries +
    e.inflatedCounts +
    (e.misreportedLogprobs > 0 ? 1 : 0) +
    (e.implausible > 0 ? 1 : 0) +
    (e.farVectors > 0 ? 1 : 0)
  );
}
