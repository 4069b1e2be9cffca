import { describe, expect, it } from "vitest";
import type { JobSpec } from "../../shared/protocol/job.js";
import {
  answerByteCap,
  boundUsage,
  chargedTokens,
  completionBounds,
  cutToBytes,
  promptTokenCap,
  tokensAtLeast,
  tokensAtMost,
} from "./usage-bounds.js";
import { remainingTokens } from "./answer-budget.js";

const spec = (maxTokens: number, content = "hi"): JobSpec => ({
  id: "j",
  model: "m",
  input: { kind: "chat", messages: [{ role: "user", content }] },
  sampling: { max_tokens: maxTokens },
});

describe("usage bounds", () => {
  it("completion tokens lie between bytes/128 and bytes+1, and never above max_tokens", () => {
    expect(completionBounds(11, 50)).toEqual({ min: 1, max: 12 });
    expect(completionBounds(2048, 16)).toEqual({ min: 16, max: 16 });
    expect(completionBounds(0, 16)).toEqual({ min: 0, max: 1 });
  });

  it("clamps an inflated report and says so; an honest one passes unchanged", () => {
    const lie = boundUsage(
      { prompt_tokens: 9e12, completion_tokens: 9e12 },
      spec(50),
      "hello world",
    );
    expect(lie.inflated).toBe(true);
    expect(lie.usage.completion_tokens).toBe(12);
    expect(lie.usage.prompt_tokens).toBe(promptTokenCap(spec(50)));
    const honest = boundUsage({ prompt_tokens: 9, completion_tokens: 2 }, spec(50), "hello world");
    expect(honest).toEqual({
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
      ownTokens: 2,
      inflated: false,
    });
  });

  it("an empty part is no tokens: nothing billed or credited, and claiming its stop token is no lie", () => {
    expect(boundUsage({ prompt_tokens: 5, completion_tokens: 1 }, spec(16), "")).toEqual({
      usage: { prompt_tokens: 5, completion_tokens: 0, total_tokens: 5 },
      ownTokens: 0,
      inflated: false,
    });
    // A replacement that wrote nothing after "You": the answer's tokens are the earlier tab's.
    const after = { prompt_tokens: 5, completion_tokens: 1, continuedTokens: 1 };
    expect(boundUsage(after, spec(16), "You", 3)).toMatchObject({
      usage: { completion_tokens: 1 },
      ownTokens: 0,
      inflated: false,
    });
  });

  it("one bound for every count: at most one token per UTF-8 byte, at least one per 128 bytes", () => {
    // Not one per character: "€" is 3 bytes and can be 3 byte-level tokens.
    expect(tokensAtMost("€€")).toBe(6);
    expect(tokensAtLeast("€€")).toBe(1);
    expect(tokensAtLeast("x".repeat(129))).toBe(2);
    // The failover budget charges delivered text the same number usage counts for it.
    expect(remainingTokens(spec(10), "€€")).toBe(10 - chargedTokens(spec(10), "€€"));
    expect(chargedTokens(spec(4), "€€")).toBe(4);
  });

  it("after a failover: the tab's own part, plus the earlier text as it counted it or at its bound", () => {
    const answer = "You said: ask";
    const own = { prompt_tokens: 5, completion_tokens: 2 };
    // No count of the earlier "You": charged at its bound (3 bytes).
    expect(boundUsage(own, spec(16), answer, 3)).toMatchObject({
      usage: { completion_tokens: 5 },
      ownTokens: 2,
      inflated: false,
    });
    // Counted: exact; an inflated count is clamped to the bound and flagged.
    expect(
      boundUsage({ ...own, continuedTokens: 1 }, spec(16), answer, 3).usage.completion_tokens,
    ).toBe(3);
    const lie = boundUsage({ ...own, continuedTokens: 99 }, spec(16), answer, 3);
    expect(lie).toMatchObject({ usage: { completion_tokens: 5 }, inflated: true });
    // The own part is held to the budget the replacement got (16 − 3), the whole to max_tokens.
    expect(boundUsage({ ...own, completion_tokens: 99 }, spec(16), answer, 3)).toMatchObject({
      ownTokens: 11,
      usage: { completion_tokens: 14 },
      inflated: true,
    });
  });

  it("a replacement asked to count (protocol 8) is held to what its count left; an older one to the bound's rest", () => {
    // "Hello there" (11 bytes) delivered, max_tokens 4: the bound leaves 1 (at least 1), a count
    // of 2 leaves 2. The tab wrote " my friend" (10 bytes) and says 2 tokens for it.
    const answer = "Hello there my friend";
    const report = { prompt_tokens: 5, completion_tokens: 2, continuedTokens: 2 };
    expect(boundUsage(report, spec(4), answer, 11, true)).toMatchObject({
      ownTokens: 2,
      usage: { completion_tokens: 4 },
      inflated: false,
    });
    // An older tab was sent max_tokens 1: its claim of 2 is over its budget, clamped and flagged.
    expect(boundUsage(report, spec(4), answer, 11, false)).toMatchObject({
      ownTokens: 1,
      usage: { completion_tokens: 3 },
      inflated: true,
    });
  });

  it("a count of the delivered text is a fault below its least or above its bytes, not above max_tokens", () => {
    const answer = "Hello there my";
    const own = { prompt_tokens: 5, completion_tokens: 1 };
    const at = (continuedTokens: number) =>
      boundUsage({ ...own, continuedTokens }, spec(4), answer, 11, true);
    // 0 tokens for 11 bytes is impossible (at least ⌈11 / 128⌉ = 1): counted at 1, flagged.
    expect(at(0)).toMatchObject({ usage: { completion_tokens: 2 }, inflated: true });
    // 6 is more than max_tokens (4) but possible for 11 bytes: an earlier tab may have run past
    // max_tokens within the byte cap. Clamped to max_tokens, not the replacement's fault.
    expect(at(6)).toMatchObject({ usage: { completion_tokens: 4 }, inflated: false });
    // 12 tokens for 11 bytes is impossible.
    expect(at(12).inflated).toBe(true);
  });

  it("cuts text to a byte budget on a character boundary", () => {
    expect(answerByteCap(16)).toBe(2048);
    expect(cutToBytes("€€€", 7)).toBe("€€");
    expect(cutToBytes("abc", 0)).toBe("");
    expect(cutToBytes("abc", 10)).toBe("abc");
  });
});
