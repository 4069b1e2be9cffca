import { describe, expect, it } from "vitest";
import { TabMessageSchema } from "./node-messages.js";
import { PROGRESS_SINCE_PROTOCOL, protocolCompatibility } from "./version.js";

describe("job.progress (protocol 2)", () => {
  it("parses as a tab frame with a known phase only", () => {
    const ok = { type: "job.progress", jobId: "job-1", phase: "prefill" };
    expect(TabMessageSchema.safeParse(ok).success).toBe(true);
    expect(TabMessageSchema.safeParse({ ...ok, phase: "decode" }).success).toBe(false);
    expect(TabMessageSchema.safeParse({ ...ok, jobId: "" }).success).toBe(false);
  });
  it("protocol-1 tabs, which never send it, are still accepted", () => {
    expect(PROGRESS_SINCE_PROTOCOL).toBe(2);
    expect(protocolCompatibility(1)).toBe("ok");
    expect(protocolCompatibility(2)).toBe("ok");
  });
});
