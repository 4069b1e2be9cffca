import { describe, expect, it } from "vitest";
import { utf8ByteLength } from "./frames.js";
import {
  JobLogprobsSchema,
  MAX_FRAME_ENTRIES,
  MAX_LOGPROB_TOKEN_BYTES,
  TokenLogprobSchema,
  logprobsFrames,
  type TokenLogprob,
} from "./logprobs.js";
import { MAX_FRAME_BYTES, TabMessageSchema } from "./node-messages.js";

const entry = (token: string, top = 0): TokenLogprob => ({
  token,
  logprob: -0.5,
  top: Array.from({ length: top }, () => ({ token, logprob: -1 })),
});

describe("job.logprobs frames", () => {
  it("split a job's entries in order, each frame valid and under the frame limit", () => {
    // The worst a tab sends: 64-byte tokens of escaped characters, 20 alternatives each.
    const heavy = "\u0001".repeat(MAX_LOGPROB_TOKEN_BYTES);
    const entries = Array.from({ length: 600 }, (_, i) => entry(i % 2 ? heavy : `t${i}`, 20));
    const frames = logprobsFrames("job-1", entries);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.flatMap((f) => f.entries)).toEqual(entries);
    for (const f of frames) {
      expect(utf8ByteLength(JSON.stringify(f))).toBeLessThan(MAX_FRAME_BYTES);
      expect(TabMessageSchema.parse(f)).toEqual(f);
    }
  });

  it("keep to MAX_FRAME_ENTRIES even when small entries would fit more", () => {
    const frames = logprobsFrames(
      "job-2",
      Array.from({ length: MAX_FRAME_ENTRIES + 1 }, () => entry("")),
    );
    expect(frames.map((f) => f.entries.length)).toEqual([MAX_FRAME_ENTRIES, 1]);
    for (const f of frames) expect(JobLogprobsSchema.safeParse(f).success).toBe(true);
  });

  it.each([
    ["a positive value", { token: "a", logprob: 0.1, top: [] }],
    ["-Infinity", { token: "a", logprob: -Infinity, top: [] }],
    ["NaN", { token: "a", logprob: NaN, top: [] }],
    ["a token over 64 bytes", { token: "é".repeat(33), logprob: -1, top: [] }],
    ["21 alternatives", { ...entry("a", 21) }],
  ])("refuse %s", (_why, bad) => {
    expect(TokenLogprobSchema.safeParse(bad).success).toBe(false);
  });
});
