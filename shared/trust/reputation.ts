import { binomialUpperTail } from "./binomial.js";
import { honestBounds, type TrustConfig, type TrustState } from "./policy.js";
import { QUARANTINE_PHRASES } from "./quarantine-causes.js";
import { countEvidence } from "./token-counts.js";
import { logprobEvidence, type LogprobComparison } from "./logprob-agreement.js";

/**
 * Per-identity evidence and the test that turns it into a trust state. Six independent streams:
 * re-scored tokens (implausible of scored), scored stops (unlikely of scored), canaries (failed of
 * sent), re-embedded vectors (far of compared: embedding-agreement.ts), completion-token counts
 * (inflated of compared: token-counts.ts) and claimed logprobs (misreported of compared:
 * logprob-agreement.ts). For each, a one-sided binomial test asks how likely an
 * honest tab — whose rate
 * is at most the Clopper–Pearson 99% upper bound of what honest GPU classes were measured at —
 * would produce at least this many failures. The smallest p-value decides:
 *   p < alpha / 6  → quarantined (sticky; the coordinator records it);
 *   p < suspectP   → suspect (checked more often);
 *   fewer than `probationChecks` checks → probation; otherwise trusted.
 * False alarms: each check of an honest identity quarantines it with probability ≤ alpha (union
 * over the six streams), provided the honest rate bounds hold (each with 99% confidence).
 */

export interface Evidence {
  audits: number;
  /**
   * Audits with at least one implausible token, an unlikely stop, a far vector, an inflated
   * count or a misreported logprob (shown, not tested alone).
   */
  failedAudits: number;
  tokens: number;
  implausible: number;
  stops: number;
  badStops: number;
  canaries: number;
  failedCanaries: number;
  /** Vectors of embedding answers re-embedded by a verifier, and those that disagreed. */
  vectors: number;
  farVectors: number;
  /**
   * Completion-token counts of answers compared with a verifier's count of the same text, and
   * those the tab inflated (token-counts.ts).
   */
  counts: number;
  inflatedCounts: number;
  /**
   * Claimed logprob entries compared with a verifier's re-computation, and those misreported
   * (logprob-agreement.ts).
   */
  logprobs: number;
  misreportedLogprobs: number;
}

export const NO_EVIDENCE: Evidence = {
  audits: 0,
  failedAudits: 0,
  tokens: 0,
  implausible: 0,
  stops: 0,
  badStops: 0,
  canaries: 0,
  failedCanaries: 0,
  vectors: 0,
  farVectors: 0,
  counts: 0,
  inflatedCounts: 0,
  logprobs: 0,
  misreportedLogprobs: 0,
};

export function addEvidence(a: Evidence, b: Partial<Evidence>): Evidence {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof Evidence)[]) out[k] += b[k] ?? 0;
  return out;
}

/**
 * One audit's evidence from the verifier's scores and, when the audit kept the tab's claim and the
 * verifier counted the answer's tokens, from the two counts (`count`: claimed by the audited tab,
 * counted by the verifier); and, when the job's logprobs were compared with the verifier's
 * re-computation, from that comparison (`logprobs`).
 */
export function auditEvidence(
  score: { tokenLogprobs: number[]; stopLogprob: number | null },
  c: TrustConfig,
  count?: { claimed: number; counted: number },
  logprobs?: LogprobComparison,
): Partial<Evidence> {
  const implausible = score.tokenLogprobs.filter(
    (lp) => !(lp >= c.implausibleLogprob), // NaN counts against the claim
  ).length;
  const badStops =
    score.stopLogprob !== null && !(score.stopLogprob >= c.implausibleLogprob) ? 1 : 0;
  const counted = count ? countEvidence(count.claimed, count.counted) : {};
  const misstated = logprobs ? logprobEvidence(logprobs) : {};
  const failed =
    implausible > 0 ||
    badStops > 0 ||
    (counted.inflatedCounts ?? 0) > 0 ||
    (misstated.misreportedLogprobs ?? 0) > 0;
  return {
    audits: 1,
    failedAudits: failed ? 1 : 0,
    tokens: score.tokenLogprobs.length,
    implausible,
    stops: score.stopLogprob === null ? 0 : 1,
    badStops,
    ...counted,
    ...misstated,
  };
}

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/**
 * How far a canary answer agrees with the known answer: the length of the common word prefix over
 * the known answer's length (capped at the canary's token budget). Greedy decoding on two honest
 * GPUs agrees for a long prefix and may drift after a near-tie; a different model drifts at once.
 */
export function canaryAgreement(claimed: string, known: string, maxWords: number): number {
  const a = words(claimed).slice(0, maxWords);
  const b = words(known).slice(0, maxWords);
  if (b.length === 0) return a.length === 0 ? 1 : 0;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i / b.length;
}

/** Does a canary answer pass against the known answer? */
export function canaryPasses(claimed: string, known: string, c: TrustConfig): boolean {
  return canaryAgreement(claimed, known, c.canaryMaxTokens) >= c.canaryMinAgreement;
}

export function canaryEvidence(claimed: string, known: string, c: TrustConfig): Partial<Evidence> {
  return { canaries: 1, failedCanaries: canaryPasses(claimed, known, c) ? 0 : 1 };
}

export interface Judgement {
  state: TrustState;
  /** Smallest p-value over the six streams (1 without evidence). */
  pValue: number;
  /** Which stream decided, in words, when suspect or quarantined. */
  reason: string | null;
}

export function judge(e: Evidence, c: TrustConfig): Judgement {
  const bound = honestBounds(c);
  const streams = [
    {
      p: binomialUpperTail(e.implausible, e.tokens, bound.token),
      why: `${e.implausible} of ${e.tokens} ${QUARANTINE_PHRASES.tokens} (honest ≤ ${pct(bound.token)})`,
    },
    {
      p: binomialUpperTail(e.badStops, e.stops, bound.stop),
      why: `${e.badStops} of ${e.stops} ${QUARANTINE_PHRASES.stops} (honest ≤ ${pct(bound.stop)})`,
    },
    {
      p: binomialUpperTail(e.failedCanaries, e.canaries, bound.canary),
      why: `${e.failedCanaries} of ${e.canaries} ${QUARANTINE_PHRASES.canaries} (honest ≤ ${pct(bound.canary)})`,
    },
    {
      p: binomialUpperTail(e.farVectors, e.vectors, bound.vector),
      why: `${e.farVectors} of ${e.vectors} ${QUARANTINE_PHRASES.vectors} (honest ≤ ${pct(bound.vector)})`,
    },
    {
      p: binomialUpperTail(e.inflatedCounts, e.counts, bound.count),
      why: `${e.inflatedCounts} of ${e.counts} ${QUARANTINE_PHRASES.counts} (honest ≤ ${pct(bound.count)})`,
    },
    {
      p: binomialUpperTail(e.misreportedLogprobs, e.logprobs, bound.logprob),
      why: `${e.misreportedLogprobs} of ${e.logprobs} ${QUARANTINE_PHRASES.logprobs} (honest ≤ ${pct(bound.logprob)})`,
    },
  ];
  const worst = streams.reduce((a, b) => (b.p < a.p ? b : a));
  if (worst.p < c.alpha / streams.length) {
    return { state: "quarantined", pValue: worst.p, reason: worst.why };
  }
  if (worst.p < c.suspectP) return { state: "suspect", pValue: worst.p, reason: worst.why };
  const checks = e.audits + e.canaries;
  return {
    state: checks < c.probationChecks ? "probation" : "trusted",
    pValue: worst.p,
    reason: null,
  };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}
