import type { TrustConfig, TrustState } from "./policy.js";
import { judge, type Evidence, type Judgement } from "./reputation.js";

/**
 * Whose word can quarantine a tab (docs/trust.md "Binding accusations"). An audit's evidence is
 * only as good as its verifier, and identities are free: an anonymous `a_…` one is minted per
 * connection, a new key pair costs nothing. So evidence counts toward a quarantine only when it is
 * binding: from a verifier that was, when it answered, a signed identity, trusted in TabTrust
 * (PROBATION_JOBS finished client jobs with few faults — real, audited work to earn, lost to a
 * quarantine; the bar `independentReports` in edge/region/job-causes.ts and canary confirmers
 * already use) and not suspect or quarantined by the evidence about its own answers; or a canary's,
 * judged by the coordinator against an answer two such identities confirmed. All evidence still
 * sets how often a tab is checked (suspect: audited more, and by trusted verifiers first).
 */

/** What the coordinator knows of a verifier when its answer arrives. */
export interface VerifierStanding {
  /** Its identity: the tab id (`a_…` when anonymous). */
  identity: string;
  /** Trusted in TabTrust (out of probation by finished client jobs, few faults, not quarantined). */
  trusted: boolean;
  /** Its state in the evidence about its own answers (reputation.ts). */
  state: TrustState;
}

export function isBindingVerifier(v: VerifierStanding): boolean {
  return (
    !v.identity.startsWith("a_") && v.trusted && v.state !== "suspect" && v.state !== "quarantined"
  );
}

/** The reason's tail of a quarantine held back for want of a binding accusation. */
export const AWAITS_BINDING = "quarantine waits for a trusted verifier to confirm";

/**
 * The verdict on an identity from all its evidence (`all`) and the part of it that is binding
 * (`binding`, a subset: every binding piece is also in `all`). A quarantine is decided on binding
 * evidence alone, by the same test and thresholds (`judge`); all evidence decides the rest. So
 * evidence from non-binding verifiers can make a tab at most suspect — when it alone would
 * quarantine, the state is suspect and the reason says it waits for a trusted verifier — and can
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
