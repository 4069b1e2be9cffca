import type { TrustConfig } from "./policy.js";
import type { Evidence } from "./reputation.js";

/**
 * Whether two tabs' vectors for one input agree: the measure of an embedding audit (edge/region/
 * audits.ts). A verifier re-embeds some of an audited job's inputs; each claimed vector is compared
 * with the verifier's by cosine similarity.
 *
 * Why 0.95 (`TrustConfig.minEmbeddingCosine`): two honest tabs run the same weights in f32 (the
 * served embedding models are q0f32) and differ only in the order their GPUs add — a cosine of
 * 0.999 or more is expected (not yet measured across GPU classes: docs/trust.md); even a q4 copy
 * of a model is expected above ~0.98 against its f32 original. A different
 * embedding model, random vectors or another input's vector lands near 0 (random unit vectors of
 * 384+ values: |cos| ≈ 0.05), far from 0.95 either way. So honest tabs pass with a wide margin and
 * the lies worth telling (a cheaper model, noise, a cached vector of other text) fail.
 */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return NaN;
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  // A zero vector has no direction: NaN, which counts as far (no honest model gives one).
  return dot / Math.sqrt(aa * bb);
}

/** Is a claimed vector far from the verifier's? NaN counts against the claim. */
export function isFarVector(cosine: number, c: TrustConfig): boolean {
  return !(cosine >= c.minEmbeddingCosine);
}

/** One embedding audit's evidence: `compared` vectors, of which `far` disagreed. */
export function embeddingAuditEvidence(compared: number, far: number): Partial<Evidence> {
  return { audits: 1, failedAudits: far > 0 ? 1 : 0, vectors: compared, farVectors: far };
}
