import { describe, expect, it } from "vitest";
import { RecentQuantile } from "./recent-quantile.js";

describe("RecentQuantile", () => {
  it("gives the nearest-rank quantile of the last `window` values", () => {
    const q = new RecentQuantile(10, 1);
    expect(q.quantile(0.5)).toBeNaN();
    for (let i = 1; i <= 10; i++) q.add(i);
    expect(q.quantile(0.5)).toBe(5);
    expect(q.quantile(0.9)).toBe(9);
    expect(q.quantile(1)).toBe(10);
    // Ten more: the first ten are forgotten.
    for (let i = 101; i <= 110; i++) q.add(i);
    expect(q.size).toBe(10);
    expect(q.quantile(0)).toBe(101);
  });

  it("re-sorts every `every` values, and ignores non-finite ones", () => {
    const q = new RecentQuantile(100, 4);
    q.add(1);
    q.add(Number.NaN);
    q.add(50);
    q.add(60);
    expect(q.size).toBe(3);
    expect(q.quantile(1)).toBe(1); // sorted at the first value, not yet since
    q.add(70);
    expect(q.quantile(1)).toBe(1);
    q.add(80); // the fourth since the sort
    expect(q.quantile(1)).toBe(80);
  });
});
