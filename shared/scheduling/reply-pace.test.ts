import { describe, expect, it } from "vitest";
import { ReplyPace } from "./reply-pace.js";

describe("ReplyPace", () => {
  it("covers the replies seen, once per served turn, and never more than maxMs", () => {
    const pace = new ReplyPace({ maxMs: 60_000, minSamples: 10, quantile: 1 });
    expect(pace.windowMs()).toBe(60_000); // nothing seen yet
    for (let i = 0; i < 10; i++) {
      pace.served(`k${i}`, i * 1000);
      pace.replied(`k${i}`, i * 1000 + 5_000 + i * 100);
      // A retried request (the same follow-up chosen again) is not a second reply.
      pace.replied(`k${i}`, i * 1000 + 50_000);
    }
    expect(pace.windowMs()).toBe(5_900);
    // A reply to a key never served here, or after maxMs, teaches nothing.
    pace.replied("unknown", 100_000);
    pace.served("late", 100_000);
    for (let i = 0; i < 20; i++) pace.replied("late", 170_000);
    expect(pace.windowMs()).toBe(5_900);
  });

  it("forgets served keys after maxMs, and keeps at most maxKeys", () => {
    const pace = new ReplyPace({ maxMs: 60_000, minSamples: 1, quantile: 1, maxKeys: 2 });
    pace.served("a", 0);
    pace.served("b", 1);
    pace.served("c", 2); // "a" dropped: over maxKeys
    pace.replied("a", 3_000);
    expect(pace.windowMs()).toBe(60_000);
    pace.replied("c", 4_002);
    expect(pace.windowMs()).toBe(4_000);
  });
});
