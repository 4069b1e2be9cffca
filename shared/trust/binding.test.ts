import { describe, expect, it } from "vitest";
import { AWAITS_BINDING, bindingJudge, isBindingVerifier } from "./binding.js";
import { DEFAULT_TRUST } from "./policy.js";
import { NO_EVIDENCE, addEvidence, auditEvidence } from "./reputation.js";

const c = DEFAULT_TRUST;
/** One audit whose verifier called every one of 32 tokens implausible. */
const framed = auditEvidence({ tokenLogprobs: Array(32).fill(-20), stopLogprob: null }, c);

describe("binding accusations (shared/trust/binding.ts)", () => {
  it("only a signed, non-suspect verifier binds", () => {
    const ok = { identity: "n_abc", state: "trusted" as const };
    expect(isBindingVerifier(ok)).toBe(true);
    expect(isBindingVerifier({ ...ok, state: "probation" })).toBe(true);
    expect(isBindingVerifier({ ...ok, identity: "a_abc" })).toBe(false);
    expect(isBindingVerifier({ ...ok, state: "suspect" })).toBe(false);
    expect(isBindingVerifier({ ...ok, state: "quarantined" })).toBe(false);
  });

  it("evidence that would quarantine makes a tab suspect only until binding evidence alone does", () => {
    const all = addEvidence(NO_EVIDENCE, framed);
    const held = bindingJudge(all, NO_EVIDENCE, c);
    expect(held.state).toBe("suspect");
    expect(held.reason).toContain(AWAITS_BINDING);
    const bound = bindingJudge(all, all, c);
    expect(bound.state).toBe("quarantined");
    expect(bound.reason).not.toContain(AWAITS_BINDING);
    // Non-binding passes cannot dilute a binding verdict either.
    const vouched = addEvidence(all, { audits: 50, tokens: 5000 });
    expect(bindingJudge(vouched, all, c).state).toBe("quarantined");
  });
});
