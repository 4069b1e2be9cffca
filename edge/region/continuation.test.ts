import { describe, expect, it } from "vitest";
import type { JobSpec } from "../../shared/protocol/job.js";
import { parseRemoteEvent, remoteCause, remoteUsage } from "./continuation.js";

const spec = {
  id: "job_wnam_00000000000000000000000000000000",
  model: "m",
  input: { kind: "chat", messages: [{ role: "user", content: "hi" }] },
  sampling: { max_tokens: 16 },
} as unknown as JobSpec;

describe("what the origin accepts from a job continued on another shard", () => {
  it("parses the relayed events and refuses anything else as a failed attempt", () => {
    expect(parseRemoteEvent({ type: "delta", text: "abc" })).toEqual({
      type: "delta",
      text: "abc",
    });
    for (const bad of [
      { type: "delta", text: 3 },
      { type: "delta", text: "x".repeat(1_048_577) },
      { type: "done", finishReason: "stop", usage: { prompt_tokens: -1 } },
      { type: "error", error: { code: "nope", message: "" } },
      { type: "other" },
      null,
    ]) {
      expect(parseRemoteEvent(bad)).toMatchObject({ code: "node_gone" });
    }
  });

  it("holds the remote usage to the text the origin holds and max_tokens", () => {
    const usage = (prompt: number, completion: number) => ({
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
    });
    // 19 bytes: between 1 and 16 (max_tokens) completion tokens.
    expect(remoteUsage(usage(5, 12), spec, "The quick brown fox")).toEqual(usage(5, 12));
    expect(remoteUsage(usage(5, 1e6), spec, "The quick brown fox").completion_tokens).toBe(16);
    expect(remoteUsage(usage(5, 0), spec, "The quick brown fox").completion_tokens).toBe(1);
    expect(remoteUsage(usage(1e6, 3), spec, "abc").prompt_tokens).toBeLessThan(100);
  });

  it("keeps a failed continuation's own error, as a tab's fault or the tab gone", () => {
    const message = "the serving tab left (socket closed); no other tab could take over in time";
    expect(remoteCause({ code: "node_gone", message })).toEqual({ code: "node_gone", message });
    expect(remoteCause({ code: "cancelled", message: "x" }).code).toBe("node_gone");
    expect(remoteCause({ code: "internal", message: "lost" }).code).toBe("node_gone");
  });
});
