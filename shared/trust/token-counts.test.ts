import { describe, expect, it } from "vitest";
import { createRng } from "../scheduling/prng.js";
import { DEFAULT_TRUST, honestBounds } from "./policy.js";
import { quarantineCause } from "./quarantine-causes.js";
import { NO_EVIDENCE, addEvidence, auditEvidence, judge, type Evidence } from "./reputation.js";
import { countEvidence, isInflatedCount, mostHonestTokens } from "./token-counts.js";

const c = DEFAULT_TRUST;
const passedScores = { tokenLogprobs: [-0.1, -0.2, -0.1], stopLogprob: null };

describe("completion-token counts (the count half of a text audit)", () => {
  it("an honest count with its stop token and some non-canonical tokens passes; one per byte does not", () => {
    // 100 tokens counted: the stop token, a template stop string and 25 non-canonical splits pass,
    // one more does not.
    expect(mostHonestTokens(100)).toBe(131);
    expect(isInflatedCount(101, 100)).toBe(false);
    expect(isInflatedCount(131, 100)).toBe(false);
    expect(isInflatedCount(132, 100)).toBe(true);
    // A one-token answer: its token, the stop token, an edge token and a stop string's tokens.
    expect(isInflatedCount(8, 1)).toBe(false);
    expect(isInflatedCount(9, 1)).toBe(true);
    // "You said: hi" is 12 bytes and 3 tokens: the coordinator's bound lets 12 through.
    expect(isInflatedCount(12, 3)).toBe(true);
  });

  it("a compared count is a check of the audit: passed when honest, failed when inflated", () => {
    expect(auditEvidence(passedScores, c)).not.toHaveProperty("counts");
    expect(auditEvidence(passedScores, c, { claimed: 4, counted: 3 })).toMatchObject({
      audits: 1,
      failedAudits: 0,
      counts: 1,
      inflatedCounts: 0,
    });
    expect(auditEvidence(passedScores, c, { claimed: 12, counted: 3 })).toMatchObject({
      audits: 1,
      failedAudits: 1,
      implausible: 0,
      counts: 1,
      inflatedCounts: 1,
    });
  });

  it("a tab that keeps inflating is quarantined after 7 counts, for its counts; honest tabs at the bound are not", () => {
    let liar: Evidence = NO_EVIDENCE;
    for (let i = 0; i < 6; i++) liar = addEvidence(liar, countEvidence(12, 3));
    expect(judge(liar, c).state).toBe("suspect");
    liar = addEvidence(liar, countEvidence(12, 3));
    const verdict = judge(liar, c);
    expect(verdict).toMatchObject({
      state: "quarantined",
      reason: expect.stringMatching(/7 of 7 completion-token counts inflated/),
    });
    expect(quarantineCause(verdict.reason!)).toBe("counts");
    // 300 honest identities whose counts fall outside the tolerance at the (stand-in) honest
    // bound, 200 counts each.
    const rng = createRng(11);
    const bound = honestBounds(c).count;
    let quarantined = 0;
    for (let id = 0; id < 300; id++) {
      let e: Evidence = NO_EVIDENCE;
      for (let a = 0; a < 200; a++) {
        e = addEvidence(e, { counts: 1, inflatedCounts: rng.next() < bound ? 1 : 0 });
        if (judge(e, c).state === "quarantined") {
          quarantined++;
          break;
        }
      }
    }
    expect(quarantined).toBe(0);
  });
});
