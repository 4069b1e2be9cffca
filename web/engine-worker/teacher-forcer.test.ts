import { describe, expect, it } from "vitest";
import { TeacherForcer, type ReportSettings } from "./teacher-forcer.js";

/**
 * The teacher forcer's re-computation of a claimed token's entry as WebLLM reports it to a client
 * (0.2.79–0.2.86 `sampleFromRawLogits`): logit_bias, then MLC's penalties on the tokens already in
 * the answer, then softmax(logits / temperature). Worked by hand on a 4-token vocabulary.
 */

const PLAIN: ReportSettings = {
  temperature: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
  top: 2,
};

function logSoftmax(values: number[]): number[] {
  const max = Math.max(...values);
  const lse = max + Math.log(values.reduce((s, v) => s + Math.exp(v - max), 0));
  return values.map((v) => v - lse);
}

/** Force `ids` through steps that each see `logits` (a fresh copy), as WebLLM calls the processor. */
function force(
  ids: number[],
  logits: number[],
  report: ReportSettings,
  bias?: Record<string, number>,
) {
  const forcer = new TeacherForcer();
  forcer.arm(ids, [], bias, report);
  for (const id of ids) {
    forcer.processLogits(Float32Array.from(logits));
    forcer.processSampledToken(id);
  }
  return forcer.disarm();
}

describe("TeacherForcer reporting", () => {
  it("at temperature 1 with no penalties reports the plain log-softmax and its top values", () => {
    const logits = [2, 1, 0, -1];
    const lp = logSoftmax(logits);
    const r = force([1], logits, PLAIN).reported!;
    expect(r[0]!.logprob).toBeCloseTo(lp[1]!, 5);
    expect(r[0]!.top.map((v) => +v.toFixed(5))).toEqual([+lp[0]!.toFixed(5), +lp[1]!.toFixed(5)]);
    // The tokens holding them, whose texts go with the values (logprob-agreement.ts).
    expect(r[0]!.topIds).toEqual([0, 1]);
  });

  it("names the likeliest tokens in order, wherever they sit in the vocabulary; of equal values the lower id first", () => {
    const logits = [0, 3, -1, 5, 3, 1];
    const r = force([1], logits, { ...PLAIN, top: 4 }).reported!;
    expect(r[0]!.topIds).toEqual([3, 1, 4, 5]);
    const lp = logSoftmax(logits);
    expect(r[0]!.top.map((v) => +v.toFixed(5))).toEqual(
      [3, 1, 4, 5].map((i) => +lp[i]!.toFixed(5)),
    );
  });

  it("divides by the temperature, and adds the bias first", () => {
    const logits = [2, 1, 0, -1];
    const r = force([2], logits, { ...PLAIN, temperature: 0.5 }, { "2": 3 }).reported!;
    // Bias: [2, 1, 3, -1]; ÷ 0.5: [4, 2, 6, -2].
    const lp = logSoftmax([4, 2, 6, -2]);
    expect(r[0]!.logprob).toBeCloseTo(lp[2]!, 5);
    expect(r[0]!.top[0]).toBeCloseTo(lp[2]!, 5);
    expect(r[0]!.topIds).toEqual([2, 0]);
  });

  it("penalises the tokens already forced, as MLC's apply_penalty_inplace does", () => {
    const logits = [2, 1, -0.5, -1];
    const settings = {
      ...PLAIN,
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
      repetitionPenalty: 1.1,
    };
    // Token 0 forced twice, then token 2: at the third step token 0 has appeared twice.
    const r = force([0, 0, 2], logits, settings).reported!;
    // Step 1: nothing appeared yet.
    expect(r[0]!.logprob).toBeCloseTo(logSoftmax(logits)[0]!, 5);
    // Step 2: token 0 once: 2 − (0.5 + 0.25) = 1.25, positive → ÷ 1.1.
    expect(r[1]!.logprob).toBeCloseTo(logSoftmax([1.25 / 1.1, 1, -0.5, -1])[0]!, 5);
    // Step 3: token 0 twice: 2 − (0.5 + 0.5) = 1 → ÷ 1.1; token 2 not yet.
    const step3 = logSoftmax([1 / 1.1, 1, -0.5, -1]);
    expect(r[2]!.logprob).toBeCloseTo(step3[2]!, 5);
    // A negative penalised logit is multiplied: token 2 after appearing once would be
    // (−0.5 − 0.75) × 1.1.
    const after = force([2, 2], logits, settings).reported!;
    expect(after[1]!.logprob).toBeCloseTo(logSoftmax([2, 1, -1.25 * 1.1, -1])[2]!, 5);
  });

  it("keeps the plain scores unchanged and reports nothing unless asked", () => {
    const logits = [2, 1, 0, -1];
    const forcer = new TeacherForcer();
    forcer.arm([1], []);
    forcer.processLogits(Float32Array.from(logits));
    forcer.processSampledToken(1);
    const out = forcer.disarm();
    expect(out.reported).toBeNull();
    expect(out.tokenLogprobs[0]).toBeCloseTo(logSoftmax(logits)[1]!, 5);
    const hot = force([1], logits, { ...PLAIN, temperature: 0.5, repetitionPenalty: 1.3 });
    expect(hot.tokenLogprobs[0]).toBeCloseTo(logSoftmax(logits)[1]!, 5);
  });
});
