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

  it("compares values past float32's underflow as equal (−9999 claimed, −120 re-computed)", () => {
    const claimed = [entry("The", -9999, [-0.4])];
    const r = [entry("The", -120, [-0.4])];
    expect(compareLogprobs(claimed, r, 1)).toEqual({ compared: 1, misreported: 0 });
  });
});
