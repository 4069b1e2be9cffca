import { describe, expect, it } from "vitest";
import { createRng } from "../scheduling/prng.js";
import { binomialUpperTail, clopperPearsonUpper } from "./binomial.js";
import { keyedHash, keyedUniform } from "./keyed-prng.js";
import {
  DEFAULT_TRUST,
  auditRateFor,
  honestBounds,
  pickCanary,
  shouldAudit,
  shouldCanary,
} from "./policy.js";
import {
  NO_EVIDENCE,
  addEvidence,
  auditEvidence,
  canaryAgreement,
  canaryEvidence,
  judge,
  type Evidence,
} from "./reputation.js";

const c = DEFAULT_TRUST;

describe("binomial test and Clopper–Pearson bound", () => {
  it("matches hand-computed tails", () => {
    expect(binomialUpperTail(0, 10, 0.3)).toBe(1);
    expect(binomialUpperTail(11, 10, 0.3)).toBe(0);
    expect(binomialUpperTail(10, 10, 0.5)).toBeCloseTo(1 / 1024, 12);
    // P[X ≥ 2 | 3, 0.5] = 4/8
    expect(binomialUpperTail(2, 3, 0.5)).toBeCloseTo(0.5, 12);
    expect(binomialUpperTail(20, 20, 0.05)).toBeCloseTo(0.05 ** 20, 30);
  });

  it("bounds a rate from above as Clopper–Pearson does", () => {
    // 0 of n: the bound is 1 - alpha^(1/n).
    expect(clopperPearsonUpper(0, 100, 0.99)).toBeCloseTo(1 - 0.01 ** (1 / 100), 6);
    const u = clopperPearsonUpper(30, 2000, 0.99);
    expect(u).toBeGreaterThan(0.015);
    expect(u).toBeLessThan(0.025);
    expect(1 - binomialUpperTail(31, 2000, u)).toBeCloseTo(0.01, 4);
  });
});

describe("keyed choices", () => {
  it("depend on the key and look uniform", () => {
    expect(keyedHash("k1", "a", 1)).not.toBe(keyedHash("k2", "a", 1));
    expect(keyedHash("k1", "a", 1)).toBe(keyedHash("k1", "a", 1));
    const n = 20000;
    let audited = 0;
    for (let i = 0; i < n; i++) if (shouldAudit(c, `job_${i}`, "trusted", 0.7)) audited++;
    expect(audited / n).toBeGreaterThan(c.auditRate * 0.85);
    expect(audited / n).toBeLessThan(c.auditRate * 1.15);
    let mean = 0;
    for (let i = 0; i < n; i++) mean += keyedUniform("k", i) / n;
    expect(mean).toBeCloseTo(0.5, 1);
  });

  it("audit more of new and suspect tabs, none of quarantined ones or hot samplings", () => {
    expect(auditRateFor("probation", c)).toBeGreaterThan(auditRateFor("trusted", c));
    expect(auditRateFor("suspect", c)).toBeGreaterThan(auditRateFor("probation", c));
    expect(auditRateFor("quarantined", c)).toBe(0);
    const always = { ...c, auditRate: 1 };
    expect(shouldAudit(always, "job_x", "trusted", 1.5)).toBe(false);
    expect(shouldAudit(always, "job_x", "trusted", undefined)).toBe(true);
  });

  it("spread canaries over the prompt set without a pattern a tab could learn", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(pickCanary(c, "pub1", i).index);
    expect(seen.size).toBeGreaterThan(12);
    expect(pickCanary(c, "pub1", 5)).toEqual(pickCanary(c, "pub1", 5));
    expect(pickCanary({ ...c, key: "other" }, "pub1", 5).seed).not.toBe(
      pickCanary(c, "pub1", 5).seed,
    );
    let canaries = 0;
    for (let i = 0; i < 10000; i++) if (shouldCanary(c, "pub1", i, "probation")) canaries++;
    expect(canaries / 10000).toBeCloseTo(c.probationCanaryRate, 1);
  });

  it("picks only among the prompts it is given (those with a known answer), spread over them", () => {
    const among = [3, 7, 11];
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const pick = pickCanary(c, "pub1", i, undefined, among);
      expect(among).toContain(pick.index);
      seen.add(pick.index);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(among);
  });
});

describe("evidence and the per-identity test", () => {
  const audit = (lps: number[], stop: number | null = null) =>
    auditEvidence({ tokenLogprobs: lps, stopLogprob: stop }, c);

  it("counts implausible tokens and unlikely stops", () => {
    expect(audit([-0.1, -1], -0.5).failedAudits).toBe(0);
    expect(audit([-0.1, -9, -20, -1, Number.NaN], -12)).toEqual({
      audits: 1,
      failedAudits: 1,
      tokens: 5,
      implausible: 3,
      stops: 1,
      badStops: 1,
    });
  });

  it("quarantines a spam answer after one audit, a truncator after a handful", () => {
    const spam = addEvidence(NO_EVIDENCE, audit(Array(20).fill(-11)));
    const j = judge(spam, c);
    expect(j.state).toBe("quarantined");
    expect(j.reason).toMatch(/20 of 20 re-scored tokens/);
    let e: Evidence = NO_EVIDENCE;
    const states: string[] = [];
    for (let i = 0; i < 8; i++) {
      e = addEvidence(e, audit(Array(12).fill(-0.2), -10));
      states.push(judge(e, c).state);
    }
    expect(states[0]).toBe("suspect");
    expect(states).toContain("quarantined");
    expect(states.indexOf("quarantined")).toBeLessThanOrEqual(6);
  });

  it("canaries: a different answer fails, an honest drift late in the answer passes", () => {
    const known = "The capital of Australia is Canberra , chosen as a compromise between cities";
    expect(canaryAgreement(known, known, 24)).toBe(1);
    expect(canaryEvidence("Sydney is the capital", known, c)).toEqual({
      canaries: 1,
      failedCanaries: 1,
    });
    const drift = known.replace("between cities", "between Sydney and Melbourne");
    expect(canaryEvidence(drift, known, c).failedCanaries).toBe(0);
    let e: Evidence = NO_EVIDENCE;
    for (let i = 0; i < 8; i++) e = addEvidence(e, canaryEvidence("no idea", known, c));
    expect(judge(e, c).state).toBe("quarantined");
  });

  it("starts on probation and becomes trusted after enough passed checks", () => {
    expect(judge(NO_EVIDENCE, c).state).toBe("probation");
    let e: Evidence = NO_EVIDENCE;
    for (let i = 0; i < c.probationChecks; i++) e = addEvidence(e, audit(Array(30).fill(-0.3)));
    expect(judge(e, c).state).toBe("trusted");
  });

  it("does not quarantine honest tabs at the honest rate bound (false alarms ≤ alpha per check)", () => {
    // 300 honest identities at the measured honest rates, 60 audits of 40 tokens and 10 canaries each.
    const rng = createRng(42);
    const bound = honestBounds(c);
    let quarantined = 0;
    for (let id = 0; id < 300; id++) {
      let e: Evidence = NO_EVIDENCE;
      for (let a = 0; a < 60; a++) {
        const lps = Array.from({ length: 40 }, () => (rng.next() < bound.token ? -9 : -0.2));
        e = addEvidence(e, audit(lps, rng.next() < bound.stop ? -9 : -0.1));
        if (a % 6 === 0)
          e = addEvidence(e, { canaries: 1, failedCanaries: rng.next() < bound.canary ? 1 : 0 });
        if (judge(e, c).state === "quarantined") {
          quarantined++;
          break;
        }
      }
    }
    expect(quarantined).toBe(0);
  });
});
