import { describe, expect, it } from "vitest";
import { hedgedText } from "./status-hedging.js";

describe("the regions table's hedged first tokens", () => {
  it("says none when no job was hedged, and the races, wins and losers' time when some were", () => {
    expect(hedgedText({ hedged: 0, hedge_won: 0, hedge_loser_ms: 0 })).toBe("none");
    expect(hedgedText({ hedged: 3, hedge_won: 2, hedge_loser_ms: 1234 })).toBe(
      "3 (2 won by the second tab; 1.2 s on losing tabs)",
    );
    expect(hedgedText({ hedged: 40, hedge_won: 31, hedge_loser_ms: 61_700 })).toBe(
      "40 (31 won by the second tab; 62 s on losing tabs)",
    );
  });

  it("reads a coordinator that reports no hedging fields as none", () => {
    expect(hedgedText({} as Parameters<typeof hedgedText>[0])).toBe("none");
  });
});
