import { describe, expect, it } from "vitest";
import { auditDeadlineFor, auditDeadlineMs, DEFAULT_TRUST } from "./policy.js";

/**
 * How long a verifier has to re-score an audit (policy.ts `auditDeadlineFor`): one forced decode
 * step per claimed token, at the pace of the slowest honest verifier of its kind. SwiftShader
 * decodes one token per 14–35 s on the build machine (docs/failure-handling.md): before, every
 * verifier had 558 s, which an honest CPU verifier misses on an answer of 16 tokens or more.
 */
describe("the audit deadline", () => {
  const c = DEFAULT_TRUST;

  it("gives a verifier that may score on the CPU 35 s a step, for a whole 128-token audit", () => {
    for (const cls of ["software", "unknown", null, undefined]) {
      const ms = auditDeadlineMs(c, cls);
      // The prefill allowance, then 129 steps at SwiftShader's slowest measured pace.
      expect(ms - 300_000).toBeGreaterThanOrEqual((c.maxAuditTokens + 1) * 35_000);
    }
  });

  it("keeps minutes, not an hour and a half, for a verifier that says it has a GPU", () => {
    for (const cls of ["high", "mid", "entry", "integrated", "mobile"]) {
      expect(auditDeadlineMs(c, cls)).toBe(558_000);
    }
    expect(auditDeadlineFor(128, "software")).toBe(5_460_000);
  });

  it("is the configuration's when it sets one (tests, operators)", () => {
    expect(auditDeadlineMs({ ...c, auditDeadlineMs: 300 }, "software")).toBe(300);
  });
});
