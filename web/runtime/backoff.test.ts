import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";

describe("Backoff", () => {
  it("grows exponentially from 0.5 s to a 30 s cap, jittered into [d/2, d]", () => {
    const high = new Backoff({ random: () => 1 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => high.next())).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ]);
    const low = new Backoff({ random: () => 0 });
    expect([low.next(), low.next()]).toEqual([250, 500]);
  });

  it("starts over after reset", () => {
    const b = new Backoff({ random: () => 1 });
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(500);
  });
});
