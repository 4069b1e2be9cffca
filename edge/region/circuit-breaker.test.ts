import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "./circuit-breaker.js";

describe("CircuitBreaker", () => {
  it("trips after more than 5 failures in 60 s and rests the tab for 5 minutes", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 5; i++) expect(b.recordFailure("n", 1000 + i)).toBe(false);
    expect(b.isResting("n", 2000)).toBe(false);
    expect(b.recordFailure("n", 2000)).toBe(true);
    expect(b.isResting("n", 2001)).toBe(true);
    expect(b.isResting("n", 2000 + 300_000)).toBe(false);
  });

  it("failures spread over more than the window do not trip it", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 20; i++) expect(b.recordFailure("n", i * 20_000)).toBe(false);
  });

  it("is per tab", () => {
    const b = new CircuitBreaker({ maxFailures: 1, windowMs: 1000, restMs: 1000 });
    b.recordFailure("a", 0);
    b.recordFailure("a", 1);
    expect(b.isResting("a", 2)).toBe(true);
    expect(b.isResting("b", 2)).toBe(false);
  });
});
