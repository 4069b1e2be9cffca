import { describe, expect, it } from "vitest";
import type { JobSpec } from "../../shared/protocol/job.js";
import {
  answerByteCap,
  boundUsage,
  completionBounds,
  cutToBytes,
  promptTokenCap,
} from "./usage-bounds.js";

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
    expect(lie.usage.prompt_tokens).toBe(promptTokenCap(spec(50), "hello world"));
    const honest = boundUsage({ prompt_tokens: 9, completion_tokens: 2 }, spec(50), "hello world");
    expect(honest).toEqual({
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
      inflated: false,
    });
  });

  it("cuts text to a byte budget on a character boundary", () => {
    expect(answerByteCap(16)).toBe(2048);
    expect(cutToBytes("€€€", 7)).toBe("€€");
    expect(cutToBytes("abc", 0)).toBe("");
    expect(cutToBytes("abc", 10)).toBe("abc");
  });
});
