import { describe, expect, it } from "vitest";
import { createRng } from "../scheduling/prng.js";
import { cosineSimilarity, embeddingAuditEvidence, isFarVector } from "./embedding-agreement.js";
import { DEFAULT_TRUST, honestBounds } from "./policy.js";
import { NO_EVIDENCE, addEvidence, judge, type Evidence } from "./reputation.js";

const c = DEFAULT_TRUST;

function unit(dims: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const v = Float32Array.from({ length: dims }, () => rng.normal());
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

describe("embedding agreement (the measure of an embedding audit)", () => {
  it("the same vector with f32 noise agrees; another vector, a zero vector or another length does not", () => {
    const v = unit(384, 1);
    const jittered = v.map((x, i) => x + (i % 2 ? 1e-4 : -1e-4));
    expect(isFarVector(cosineSimilarity(v, jittered), c)).toBe(false);
    expect(cosineSimilarity(v, unit(384, 2))).toBeLessThan(0.3);
    expect(isFarVector(cosineSimilarity(v, unit(384, 2)), c)).toBe(true);
    expect(isFarVector(cosineSimilarity(v, new Float32Array(384)), c)).toBe(true);
    expect(isFarVector(cosineSimilarity(v, unit(768, 1)), c)).toBe(true);
  });

  it("random vectors are quarantined after 7 far vectors; honest tabs at the bound are not", () => {
    let liar: Evidence = NO_EVIDENCE;
    liar = addEvidence(liar, embeddingAuditEvidence(4, 4));
    expect(judge(liar, c).state).toBe("suspect");
    liar = addEvidence(liar, embeddingAuditEvidence(4, 4));
    expect(judge(liar, c)).toMatchObject({
      state: "quarantined",
      reason: expect.stringMatching(/8 of 8 re-embedded vectors disagreed/),
    });
    // 300 honest identities disagreeing at the (stand-in) honest bound, 100 audits of 4 vectors.
    const rng = createRng(9);
    const bound = honestBounds(c).vector;
    let quarantined = 0;
    for (let id = 0; id < 300; id++) {
      let e: Evidence = NO_EVIDENCE;
      for (let a = 0; a < 100; a++) {
        let far = 0;
        for (let k = 0; k < 4; k++) far += rng.next() < bound ? 1 : 0;
        e = addEvidence(e, embeddingAuditEvidence(4, far));
        if (judge(e, c).state === "quarantined") {
          quarantined++;
          break;
        }
      }
    }
    expect(quarantined).toBe(0);
  });
});
