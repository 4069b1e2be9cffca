import { clopperPearsonUpper } from "./binomial.js";
import { CANARY_PROMPTS } from "./canary-prompts.js";
import { keyedHash, keyedUniform } from "./keyed-prng.js";

/**
 * How much of the traffic is re-checked, and what counts as a failed check. Defaults are the
 * figures docs/trust.md argues for; every field can be overridden (tests, the bench, operators).
 */
export interface TrustConfig {
  /** Secret of the keyed choices (which job is audited, which slot is a canary). Never sent. */
  key: string;
  /** Share of a trusted tab's finished jobs that is audited. */
  auditRate: number;
  /** ... of a tab on probation (too few checks yet) and of a suspect tab. */
  probationAuditRate: number;
  suspectAuditRate: number;
  /** After a finished client job, chance that the tab's next job is a canary, by state. */
  canaryRate: number;
  probationCanaryRate: number;
  suspectCanaryRate: number;
  /** A tab leaves probation after this many passed checks (audits + canaries). */
  probationChecks: number;
  /** A claimed token the verifier finds less likely than e^this is "implausible". */
  implausibleLogprob: number;
  /** Tokens of an answer that are re-scored (the rest is not fed: bounds audit cost). */
  maxAuditTokens: number;
  /**
   * How long a verifier has to answer an audit it was sent; then the audit goes to another
   * verifier and the silent one is at fault. Unset: `auditDeadlineFor(maxAuditTokens, the verifier's class)`.
   */
  auditDeadlineMs?: number;
  /** Jobs sampled hotter than this are not audited (honest tokens get too unlikely). */
  maxAuditTemperature: number;
  /** Inputs of an audited embedding job that are re-embedded (bounds the verifier's work). */
  maxAuditVectors: number;
  /**
   * A claimed embedding vector whose cosine similarity with the verifier's vector of the same input
   * is below this is "far" (shared/trust/embedding-agreement.ts says why 0.95).
   */
  minEmbeddingCosine: number;
  /**
   * What honest disagreement was measured at, between GPU classes of one (model, quantization):
   * implausible tokens of all re-scored tokens, unlikely stops of all scored stops, failed canaries
   * of all canaries. The tests use the Clopper–Pearson 99% upper bound of each rate.
   */
  honestTokens: { events: number; trials: number };
  honestStops: { events: number; trials: number };
  honestCanaries: { events: number; trials: number };
  /**
   * Far vectors of all re-embedded vectors between honest tabs. Not measured yet: a conservative
   * stand-in (1 in 200, as for stops) far above what same-weights f32 tabs disagree at (never, at
   * 0.95), so the test is slower to quarantine than the truth allows, never quicker.
   */
  honestVectors: { events: number; trials: number };
  /**
   * Inflated counts of all compared completion-token counts between honest tabs (token-counts.ts
   * says what "inflated" is). Not measured yet: the same conservative stand-in (1 in 200) — an
   * honest tab's count lies within the tolerance unless its sampling took far more non-canonical
   * tokenizations than seen at temperature ≤ 1 — so the test is slower to quarantine than the
   * truth allows, never quicker.
   */
  honestCounts: { events: number; trials: number };
  /**
   * Misreported logprob entries of all compared entries between honest tabs (logprob-agreement.ts
   * says what "misreported" is). Not measured between GPU classes yet: a conservative stand-in (2
   * in 200, as for canaries) — one GPU and the same engine agree to a hundredth of a nat, far
   * inside the tolerance — so the test is slower to quarantine than the truth allows, never quicker.
   */
  honestLogprobs: { events: number; trials: number };
  /** Per-check false-alarm rate of the whole test (split over its six streams). */
  alpha: number;
  /**
   * A verifier loses its binding word (shared/trust/binding.ts) once this many of its decisive
   * accusations were contradicted by a second binding verifier, and more of them than were
   * confirmed. An honest verifier's decisive accusation is confirmed: honest noise is built to
   * quarantine with probability ≤ `alpha` per check, so a contradiction marks a framer (or a
   * colluding confirmer). Not 1: one contradiction alone, which a colluding confirmer can make,
   * should not strip an honest verifier of its word.
   */
  contradictionsToUnbind: number;
  /** Below this p-value a tab is suspect: it is checked more often, not yet quarantined. */
  suspectP: number;
  /** Canary answers: short and greedy. Pass when this share of the reference prefix matches. */
  canaryMaxTokens: number;
  canaryMinAgreement: number;
}

export const DEFAULT_TRUST: TrustConfig = {
  key: "tabgrid-dev-key",
  auditRate: 0.02,
  probationAuditRate: 0.2,
  suspectAuditRate: 0.5,
  canaryRate: 0.005,
  probationCanaryRate: 0.1,
  suspectCanaryRate: 0.3,
  probationChecks: 3,
  implausibleLogprob: -8,
  maxAuditTokens: 128,
  maxAuditTemperature: 1,
  maxAuditVectors: 4,
  minEmbeddingCosine: 0.95,
  honestTokens: { events: 30, trials: 2000 },
  honestStops: { events: 1, trials: 200 },
  honestCanaries: { events: 2, trials: 200 },
  honestVectors: { events: 1, trials: 200 },
  honestCounts: { events: 1, trials: 200 },
  honestLogprobs: { events: 2, trials: 200 },
  alpha: 1e-9,
  contradictionsToUnbind: 2,
  suspectP: 0.05,
  canaryMaxTokens: 24,
  canaryMinAgreement: 0.5,
};

/**
 * The slowest re-scoring the audit deadline allows for, by the verifier's GPU class. A re-score is
 * one prefill of the job's prompt, then one teacher-forced decode step per claimed token (at most
 * `maxAuditTokens`) and one for the stop (docs/trust.md). A GPU decodes 2 tokens/s or more (the
 * contributor page recommends ≥ 10: shared/gpu/predict.ts), so 0.5 tokens/s is a wide margin.
 * SwiftShader, the CPU adapter and the slowest a tab can be, decodes one token per 14–35 s on the
 * build machine (docs/failure-handling.md); a tab that says no class may be one. Their deadline
 * allows 40 s a step.
 */
const GPU_SCORING_MS_PER_STEP = 2_000;
const SOFTWARE_SCORING_MS_PER_STEP = 40_000;
/** Prefill of the audit's prompt on the slowest adapter (~150 tokens at 0.5 tokens/s). */
const AUDIT_PREFILL_ALLOWANCE_MS = 300_000;

/** A verifier of this class (its own claim) may be a CPU adapter: the slow deadline. */
export function mayScoreOnCpu(gpuClass: string | null | undefined): boolean {
  return !gpuClass || gpuClass === "software" || gpuClass === "unknown";
}

/**
 * The audit deadline for audits of `maxAuditTokens` tokens: for the default 128, 558 s (9.3 min)
 * on a GPU — 5 min of prefill plus 129 steps at 2 s — and 5,460 s (91 min) on a verifier that may
 * be a CPU adapter. An honest GPU answers in seconds; a verifier that holds an audit past this is
 * not scoring it. (Until 2026-11-30 every verifier had the GPU's 558 s, which an honest SwiftShader
 * tab misses on any answer of more than 15–30 tokens, and was faulted for.)
 */
export function auditDeadlineFor(maxAuditTokens: number, gpuClass?: string | null): number {
  const perStep = mayScoreOnCpu(gpuClass) ? SOFTWARE_SCORING_MS_PER_STEP : GPU_SCORING_MS_PER_STEP;
  return AUDIT_PREFILL_ALLOWANCE_MS + (maxAuditTokens + 1) * perStep;
}

/** The deadline a verifier has to answer an audit, by this configuration. */
export function auditDeadlineMs(c: TrustConfig, gpuClass?: string | null): number {
  return c.auditDeadlineMs ?? auditDeadlineFor(c.maxAuditTokens, gpuClass);
}

/** The honest rates' 99% upper bounds, one per evidence stream. */
export interface HonestBounds {
  token: number;
  stop: number;
  canary: number;
  vector: number;
  count: number;
  logprob: number;
}

const boundsCache = new WeakMap<TrustConfig, HonestBounds>();

/** The honest rates' 99% upper bounds the binomial tests compare against (cached per config). */
export function honestBounds(c: TrustConfig): HonestBounds {
  const cached = boundsCache.get(c);
  if (cached) return cached;
  const bounds = {
    token: clopperPearsonUpper(c.honestTokens.events, c.honestTokens.trials, 0.99),
    stop: clopperPearsonUpper(c.honestStops.events, c.honestStops.trials, 0.99),
    canary: clopperPearsonUpper(c.honestCanaries.events, c.honestCanaries.trials, 0.99),
    vector: clopperPearsonUpper(c.honestVectors.events, c.honestVectors.trials, 0.99),
    count: clopperPearsonUpper(c.honestCounts.events, c.honestCounts.trials, 0.99),
    logprob: clopperPearsonUpper(c.honestLogprobs.events, c.honestLogprobs.trials, 0.99),
  };
  boundsCache.set(c, bounds);
  return bounds;
}

export type TrustState = "probation" | "trusted" | "suspect" | "quarantined";

export function auditRateFor(state: TrustState, c: TrustConfig): number {
  if (state === "quarantined") return 0;
  if (state === "suspect") return c.suspectAuditRate;
  return state === "probation" ? c.probationAuditRate : c.auditRate;
}

export function canaryRateFor(state: TrustState, c: TrustConfig): number {
  if (state === "quarantined") return 0;
  if (state === "suspect") return c.suspectCanaryRate;
  return state === "probation" ? c.probationCanaryRate : c.canaryRate;
}

/** Is this finished job audited? Keyed on the job id: a tab cannot tell, the coordinator can redo it. */
export function shouldAudit(
  c: TrustConfig,
  jobId: string,
  state: TrustState,
  temperature: number | undefined,
): boolean {
  if ((temperature ?? 1) > c.maxAuditTemperature) return false;
  return keyedUniform(c.key, "audit", jobId) < auditRateFor(state, c);
}

/** Is this tab's next job a canary? `counter` is the tab's count of finished jobs. */
export function shouldCanary(
  c: TrustConfig,
  tabPublicId: string,
  counter: number,
  state: TrustState,
): boolean {
  return keyedUniform(c.key, "canary", tabPublicId, counter) < canaryRateFor(state, c);
}

/**
 * Which canary prompt, and the seed it runs with (keyed, so not guessable from earlier ones).
 * `among`, when given, are the indices of `prompts` it may be (those whose answer is known: a tab
 * that cannot help confirm an answer learns nothing from a canary whose answer is not).
 */
export function pickCanary(
  c: TrustConfig,
  tabPublicId: string,
  counter: number,
  prompts: readonly string[] = CANARY_PROMPTS,
  among?: readonly number[],
): { index: number; prompt: string; seed: number } {
  const hash = keyedHash(c.key, "canary-prompt", tabPublicId, counter);
  const index = among?.length ? among[hash % among.length]! : hash % prompts.length;
  return {
    index,
    prompt: prompts[index]!,
    seed: keyedHash(c.key, "canary-seed", tabPublicId, counter) & 0x7fffffff,
  };
}

/** The seed the coordinator gives a job (or an audit): keyed on its id, never the client's choice alone. */
export function jobSeed(c: TrustConfig, id: string): number {
  return keyedHash(c.key, "seed", id) & 0x7fffffff;
}
