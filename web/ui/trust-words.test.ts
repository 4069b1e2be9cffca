import { describe, expect, it } from "vitest";
import type { ContributorView, TrustStanding } from "../runtime/tab-status.js";
import { stateWords } from "./state-words.js";
import { trustWords, whenWords } from "./trust-words.js";

const at = Date.UTC(2026, 10, 29, 18, 52);
const standing = (patch: Partial<TrustStanding>): TrustStanding => ({
  state: "probation",
  jobs: 3,
  probationJobs: 20,
  faults: 0,
  audits: { passed: 0, failed: 0 },
  ...patch,
});

describe("the tab's trust state in plain words", () => {
  it("nothing until the coordinator told the tab", () => {
    expect(trustWords(null)).toBeNull();
  });

  it("probation: how far it is, and that nothing was re-checked yet", () => {
    const w = trustWords(standing({}));
    expect(w?.label).toBe("On probation");
    expect(w?.summary).toContain("limited share of requests");
    expect(w?.summary).toContain("3 of 20 done");
    expect(w?.summary).toContain("no answer of this tab has been re-checked yet");
  });

  it("trusted: the audit counts", () => {
    const w = trustWords(
      standing({ state: "trusted", jobs: 40, audits: { passed: 5, failed: 1 } }),
    );
    expect(w).toMatchObject({ label: "Trusted", detail: null });
    expect(w?.summary).toContain("6 answers re-checked by other tabs: 5 passed, 1 failed");
  });

  it("quarantined after audits: when, why in plain words, what it means, and the network's reason", () => {
    const reason = "20 of 20 re-scored tokens implausible (honest ≤ 2.26%)";
    const w = trustWords(
      standing({
        state: "quarantined",
        quarantinedAt: at,
        reason,
        audits: { passed: 0, failed: 2 },
      }),
      at + 12 * 60_000,
    );
    expect(w?.label).toBe("Quarantined");
    expect(w?.summary).toContain("quarantined since 29 Nov 2026, 18:52 UTC (12 minutes ago)");
    expect(w?.summary).toContain("found their words far less likely than that model makes them");
    expect(w?.summary).toContain("no client requests and earns no credit until an operator");
    expect(w?.detail).toBe(`The network's reason: ${reason}.`);
  });

  it("each cause the coordinator can give has its own plain words", () => {
    const words = (reason: string) =>
      trustWords(standing({ state: "quarantined", quarantinedAt: at, reason }), at)?.summary;
    expect(words("3 of 6 answers ended where the model would not stop (honest ≤ 3.3%)")).toContain(
      "cut off where the model would have gone on",
    );
    expect(words("7 of 7 canaries failed (honest ≤ 4.1%)")).toContain("test questions");
    expect(words("7 of 7 completion-token counts inflated (honest ≤ 3.30%)")).toContain(
      "found far fewer than it reported",
    );
    expect(words("operator: serving a renamed model")).toContain("an operator of the network");
    expect(words("x")).toContain("(just now)");
  });

  it("the headline does not say 'waiting for requests' while quarantined", () => {
    const v = {
      state: "idle",
      connection: "connected",
      connectionDetail: null,
      model: "m",
      tabId: "n1",
      jobsServed: 0,
      lastTokensPerSecond: null,
      error: null,
      reason: null,
      serving: null,
      trust: standing({ state: "quarantined", reason: "x", quarantinedAt: at }),
    } satisfies ContributorView;
    expect(stateWords(v, null, null)).toMatch(/^quarantined: this tab gets no requests/);
    expect(stateWords({ ...v, trust: standing({}) }, null, null)).toMatch(/^ready: waiting/);
  });

  it("times far back read in hours", () => {
    expect(whenWords(at, at + 5 * 3600_000)).toBe("29 Nov 2026, 18:52 UTC (5 hours ago)");
  });
});
