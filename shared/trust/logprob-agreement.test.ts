import { describe, expect, it } from "vitest";
import { compareLogprobs, logprobTolerance, type ClaimedLogprob } from "./logprob-agreement.js";

const entry = (token: string, logprob: number, top: number[] = [logprob]) => ({
  token,
  logprob,
  top,
});

describe("compareLogprobs", () => {
  const reported = [
    entry("The", -0.4, [-0.4, -2]),
    entry(" cat", -1.2, [-0.6, -1.2]),
    entry(" sat", -0.1, [-0.1, -4]),
    entry(".", -0.05, [-0.05, -5]),
  ];

  it("counts honest claims within the tolerance as agreeing", () => {
    const claimed: ClaimedLogprob[] = reported.map((r) => ({
      ...r,
      logprob: r.logprob - 0.3,
      top: r.top.map((v) => v - 0.3),
    }));
    expect(compareLogprobs(claimed, reported, 1)).toEqual({ compared: 4, misreported: 0 });
  });

  it("counts made-up values, and a made-up likeliest alternative, as misreported", () => {
    const claimed = [
      entry("The", 0, [0]), // 0.4 off: within 1.04
      entry(" cat", -6, [-0.6]), // 4.8 off
      entry(" sat", -0.1, [-3]), // the likeliest alternative 2.9 off
      entry(".", -0.05, [-0.05]),
    ];
    expect(compareLogprobs(claimed, reported, 1)).toEqual({ compared: 4, misreported: 2 });
  });

  it("pairs entries by token text, skipping tokens with no entry (a split character's first half)", () => {
    const claimed = [entry(" cat", -1.2), entry(".", -0.05)];
    expect(compareLogprobs(claimed, reported, 1)).toEqual({ compared: 2, misreported: 0 });
  });

  it("counts entries naming tokens the answer does not have against the claim when most do not pair", () => {
    const many = Array.from({ length: 10 }, (_, i) => entry(` w${i}`, -1));
    const claimed = many.map((e, i) => (i < 3 ? e : entry(` x${i}`, -1)));
    expect(compareLogprobs(claimed, many, 1)).toEqual({ compared: 10, misreported: 7 });
    // A few unpaired (a tokenization the encoder would not take) are only skipped.
    const mostly = many.map((e, i) => (i === 4 ? entry(" odd", -1) : e));
    expect(compareLogprobs(mostly, many, 1)).toEqual({ compared: 9, misreported: 0 });
  });

  it("does not compare greedy jobs, and widens the tolerance as the temperature cools", () => {
    const claimed = [entry("The", -3)];
    expect(compareLogprobs(claimed, reported, 0)).toEqual({ compared: 0, misreported: 0 });
    expect(compareLogprobs(claimed, reported, 1).misreported).toBe(1);
    expect(compareLogprobs(claimed, reported, 0.2).misreported).toBe(0);
    expect(logprobTolerance(-0.4, 0.5)).toBeCloseTo(2 * logprobTolerance(-0.4, 1), 10);
  });

  it("compares each alternative's value at its rank, not only the likeliest's", () => {
    const claimed = [entry("The", -0.4, [-0.4, -2]), entry(" cat", -1.2, [-0.6, -9])];
    // " cat"'s second alternative is claimed at −9 where the model has −1.2 (7.8 off).
    expect(compareLogprobs(claimed, reported, 1)).toEqual({ compared: 2, misreported: 1 });
  });

  describe("the alternatives' texts", () => {
    // The verifier re-computes the five likeliest tokens with their texts.
    const five = (values: number[]) => ({
      token: " cat",
      logprob: values[0]!,
      top: values,
      topTokens: [" cat", " dog", " rat", " bat", " hat"],
    });
    const spread = [five([-0.5, -1.5, -3, -6, -9])];
    const claim = (names: string[], values: number[]): ClaimedLogprob[] => [
      { token: " cat", logprob: values[0]!, top: values, topTokens: names },
    ];

    it("agree when each is among the verifier's likeliest, in any order (near-ties swap)", () => {
      expect(compareLogprobs(claim([" cat", " dog"], [-0.5, -1.5]), spread, 1).misreported).toBe(0);
      expect(compareLogprobs(claim([" dog", " cat"], [-0.5, -1.5]), spread, 1).misreported).toBe(0);
    });

    it("count a made-up text at a rank the model holds clearly above its list's end as misreported", () => {
      const spam = claim([" cat", " BUY NOW"], [-0.5, -1.5]);
      expect(compareLogprobs(spam, spread, 1)).toEqual({ compared: 1, misreported: 1 });
      // The same text twice: the verifier's " cat" is taken once.
      const twice = claim([" cat", " cat"], [-0.5, -1.5]);
      expect(compareLogprobs(twice, spread, 1).misreported).toBe(1);
    });

    it("let a text pass that may be a near-tie with the first token below the verifier's list", () => {
      const flat = [five([-1, -1.1, -1.2, -1.3, -1.4])];
      expect(compareLogprobs(claim([" cat", " elk"], [-1, -1.1]), flat, 1).misreported).toBe(0);
    });

    it("are not compared with an audit kept, or a verifier's page, from before they were sent", () => {
      const spam = claim([" cat", " BUY NOW"], [-0.5, -1.5]);
      const { topTokens: _kept, ...older } = spam[0]!;
      expect(compareLogprobs([older], spread, 1).misreported).toBe(0);
      const { topTokens: _sent, ...olderVerifier } = spread[0]!;
      expect(compareLogprobs(spam, [olderVerifier], 1).misreported).toBe(0);
    });
  });

  it("compares values past float32's underflow as equal (−9999 claimed, −120 re-computed)", () => {
    const claimed = [entry("The", -9999, [-0.4])];
    const r = [entry("The", -120, [-0.4])];
    expect(compareLogprobs(claimed, r, 1)).toEqual({ compared: 1, misreported: 0 });
  });
});
