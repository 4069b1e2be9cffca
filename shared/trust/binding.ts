import type { TrustConfig, TrustState } from "./policy.js";
import { judge, type Evidence, type Judgement } from "./reputation.js";
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
 * bar) and suspect liars were audited at 50% (40% audit overhead). A new key pair is still free:
 * a framer who signs can frame (docs/trust.md says what is left).
 */

/** What the coordinator knows of a verifier when its answer arrives. */
export interface VerifierStanding {
  /** Its identity: the tab id (`a_…` when anonymous). */
  identity: string;
  /** Its state in the evidence about its own answers (reputation.ts). */
  state: TrustState;
}

export function isBindingVerifier(v: VerifierStanding): boolean {
  return !isAnonymous(v.identity) && v.state !== "suspect" && v.state !== "quarantined";
}

/** The reason's tail of a quarantine held back for want of a binding accusation. */
export const AWAITS_BINDING = "quarantine waits for a signed verifier to confirm";

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
    (e.implausible > 0 ? 1 : 0) +
    (e.farVectors > 0 ? 1 : 0)
  );
}
