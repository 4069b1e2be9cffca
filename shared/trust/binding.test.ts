import { describe, expect, it } from "vitest";
import {
  AWAITS_BINDING,
  AWAITS_CONFIRMATION,
  NO_ACCUSATIONS,
  awaitingConfirmation,
  bindingJudge,
  confirmationOf,
  isBindingVerifier,
  isDecisive,
  isDiscredited,
} from "./binding.js";
import { DEFAULT_TRUST } from "./policy.js";
import { NO_EVIDENCE, addEvidence, auditEvidence } from "./reputation.js";

const c = DEFAULT_TRUST;
/** One audit whose verifier called every one of 32 tokens implausible. */
const framed = auditEvidence({ tokenLogprobs: Array(32).fill(-20), stopLogprob: null }, c);

describe("binding accusations (shared/trust/binding.ts)", () => {
  it("only a signed, non-suspect verifier binds", () => {
    const ok = { identity: "n_abc", state: "trusted" as const, accusations: NO_ACCUSATIONS };
    expect(isBindingVerifier(ok, c)).toBe(true);
    expect(isBindingVerifier({ ...ok, state: "probation" }, c)).toBe(true);
    expect(isBindingVerifier({ ...ok, identity: "a_abc" }, c)).toBe(false);
    expect(isBindingVerifier({ ...ok, state: "suspect" }, c)).toBe(false);
    expect(isBindingVerifier({ ...ok, state: "quarantined" }, c)).toBe(false);
  });

  it("a verifier contradicted twice, and more often than confirmed, loses its binding word", () => {
    const ok = { identity: "n_abc", state: "trusted" as const };
    const binds = (confirmed: number, contradicted: number) =>
      isBindingVerifier({ ...ok, accusations: { confirmed, contradicted } }, c);
    // One contradiction alone (a colluding confirmer can make one) does not strip it.
    expect(binds(0, 1)).toBe(true);
    expect(binds(0, 2)).toBe(false);
    // Confirmed as often as contradicted: an honest verifier a colluder contradicts now and then.
    expect(binds(2, 2)).toBe(true);
    expect(binds(2, 3)).toBe(false);
    expect(binds(5, 1)).toBe(true);
    expect(isDiscredited({ confirmed: 0, contradicted: 2 }, c)).toBe(true);
    // The bound is the configuration's.
    expect(isDiscredited({ confirmed: 0, contradicted: 2 }, { contradictionsToUnbind: 3 })).toBe(
      false,
    );
  });

  it("an accusation is decisive when it alone tips the binding evidence into a quarantine", () => {
    expect(isDecisive(NO_EVIDENCE, framed, c)).toBe(true);
    // Passing evidence, or failing evidence too small to quarantine, is not.
    const passed = { audits: 1, tokens: 32 };
    expect(isDecisive(NO_EVIDENCE, passed, c)).toBe(false);
    const oneToken = auditEvidence({ tokenLogprobs: [-20, -1, -1], stopLogprob: null }, c);
    expect(isDecisive(NO_EVIDENCE, oneToken, c)).toBe(false);
    // Binding evidence that quarantines already decides nothing more.
    const bound = addEvidence(NO_EVIDENCE, framed);
    expect(isDecisive(bound, framed, c)).toBe(false);
    // While it waits, the subject is suspect and the reason says what for.
    const waiting = awaitingConfirmation(bound, c);
    expect(waiting.state).toBe("suspect");
    expect(waiting.reason).toMatch(/re-scored tokens implausible/);
    expect(waiting.reason).toContain(AWAITS_CONFIRMATION);
  });

  it("a second verifier confirms only by deciding the quarantine itself; a pass contradicts", () => {
    expect(confirmationOf(NO_EVIDENCE, framed, c)).toBe("confirmed");
    expect(confirmationOf(NO_EVIDENCE, { audits: 1, tokens: 32 }, c)).toBe("contradicted");
    // One implausible token of 32: honest noise (1.5% of tokens between GPU classes) is neither.
    const noisy = auditEvidence(
      { tokenLogprobs: [-12, ...Array<number>(31).fill(-0.1)], stopLogprob: -0.1 },
      c,
    );
    expect(confirmationOf(NO_EVIDENCE, noisy, c)).toBe("unconfirmed");
    // Against the binding evidence the subject had without the accusation: evidence that tips
    // it is a confirmation, though it would not quarantine a tab with none.
    const halfway = auditEvidence(
      { tokenLogprobs: Array<number>(5).fill(-20), stopLogprob: null },
      c,
    );
    const before = addEvidence(NO_EVIDENCE, halfway);
    expect(confirmationOf(NO_EVIDENCE, halfway, c)).toBe("unconfirmed");
    expect(confirmationOf(before, halfway, c)).toBe("confirmed");
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
