import { describe, expect, it } from "vitest";
import { RunLengths } from "./run-lengths.js";
import { Scheduler } from "./scheduler.js";
import { candidateTab, matchRequest, OPEN } from "../../test/support/candidate-tab.js";

const here = { lat: 50, lon: 8 };
/** 1000 tokens/s of decode: a job of n max_tokens (no prompt) is estimated at n ms. */
const tab = (id: string, prefill = 1000) =>
  candidateTab(id, { location: here, prefill, decode: 1000 });
const job = { promptTokens: 0, maxTokens: 1000 };

/** Jobs that ran to their end on "a": 30 stopped at half their estimate, 10 ran 1.5× over. */
function trained(options: ConstructorParameters<typeof Scheduler>[0] = {}): Scheduler {
  const s = new Scheduler({ staleAfterMs: Infinity, queueBehindUntimed: true, ...options });
  s.put(tab("a"), OPEN);
  let t = 0;
  for (let i = 0; i < 40; i++) {
    s.assigned("a", `past-${i}`, job, t);
    t += i < 30 ? 500 : 1500;
    s.left("a", `past-${i}`, t, { finished: true });
  }
  return s;
}

describe("RunLengths", () => {
  it("expects what the jobs that ran at least as long took, and nothing before enough were seen", () => {
    const r = new RunLengths({ minSamples: 4, quantile: 0.5 });
    r.record(500, 1000);
    r.record(600, 1000);
    r.record(1200, 1000);
    expect(r.expectedShare(0)).toBeNull();
    r.record(1400, 1000);
    expect(r.expectedShare(0)).toBe(1.2);
    expect(r.expectedShare(0.7)).toBe(1.4);
    expect(r.expectedShare(1.5)).toBeNull(); // outran every job seen
  });

  it("keeps only the most recent ratios", () => {
    const r = new RunLengths({ capacity: 2, minSamples: 1, quantile: 0 });
    r.record(100, 100);
    r.record(200, 100);
    r.record(300, 100);
    expect(r.expectedShare(0)).toBe(2);
  });
});

describe("Scheduler with learnRunLengths", () => {
  it("expects a running job to end as finished jobs that had run as long ended", () => {
    const s = trained({ learnRunLengths: true, runLengthQuantile: 0.5 });
    const t = 100_000;
    s.assigned("a", "now", job, t);
    // Most answers stop at half the estimate…
    expect(s.freeAtMs("a")).toBe(t + 500);
    // …but one still running at 600 ms is one of the long ones.
    s.choose(matchRequest(here, 10), t + 600);
    expect(s.freeAtMs("a")).toBe(t + 1500);
  });

  it("so a request does not queue behind a job about to end by its estimate that will run long", () => {
    const choice = (learnRunLengths: boolean) => {
      const s = trained({ learnRunLengths, runLengthQuantile: 0.5 });
      s.put(tab("b", 800), OPEN); // idle: 2000 tokens of prompt take 2.5 s
      const t = 100_000;
      s.assigned("a", "now", job, t);
      s.choose(matchRequest(here, 10), t + 600);
      return s.choose(matchRequest(here, 2000), t + 950);
    };
    // By the estimate 50 ms are left on a, then 2 s of prefill: a, by more than idlePreference.
    const plain = choice(false);
    expect(plain.kind === "match" && plain.match.tab.id).toBe("a");
    // The jobs that ran past 600 ms took 1500 ms: 550 ms left, then 2 s: the idle b is faster.
    const learned = choice(true);
    expect(learned.kind === "match" && learned.match.tab.id).toBe("b");
  });

  it("leaves a job that outran every job seen to the overdue rule, or alone without one", () => {
    const s = trained({ learnRunLengths: true, runLengthQuantile: 0.5 });
    const t = 100_000;
    s.assigned("a", "now", job, t);
    // Past 1.5×: the overdue rule, from what it was last expected to take (500 ms, the median).
    s.choose(matchRequest(here, 10), t + 2000);
    expect(s.freeAtMs("a")).toBe(t + 2500);
    const plain = trained({ learnRunLengths: true, runLengthQuantile: 0.5, overdueShare: 0 });
    plain.assigned("a", "now", job, t);
    expect(plain.choose(matchRequest(here, 10), t + 2000).kind).toBe("match");
    expect(plain.freeAtMs("a")).toBe(t + 500); // as without run lengths: left as it was
  });

  it("learns nothing from jobs that did not run to their end (cancelled, moved, failed)", () => {
    const s = new Scheduler({ staleAfterMs: Infinity, learnRunLengths: true });
    s.put(tab("a"), OPEN);
    for (let i = 0; i < 40; i++) {
      s.assigned("a", `past-${i}`, job, i * 1000);
      s.left("a", `past-${i}`, i * 1000 + 10); // cancelled after 10 ms
    }
    s.assigned("a", "now", job, 100_000);
    expect(s.freeAtMs("a")).toBe(101_000); // the plain estimate
  });
});
