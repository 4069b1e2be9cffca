import { describe, expect, it } from "vitest";
import { accountWords } from "./dashboard.js";

const account = {
  balance: 46,
  earned: 47,
  spent: 1,
  withheld: 0,
  quarantined: false,
  linked: true,
  at: 0,
};

describe("the ledger's balance in words", () => {
  it("says what a linked key spent", () => {
    expect(accountWords(account)).toBe("46 (1 spent by your linked key)");
  });

  it("says what was taken back, and the latest reason the coordinator gave", () => {
    const reason =
      "credit taken back: token count of job job_wnam_1 inflated (59 reported, at most 23 honest), confirmed by two verifiers";
    expect(accountWords({ ...account, takenBack: 72, lastTakeBack: reason })).toBe(
      `46 (1 spent by your linked key; 72 taken back (latest: ${reason}))`,
    );
  });

  it("from a coordinator that sends no take-backs, nothing more", () => {
    expect(accountWords({ ...account, spent: 0 })).toBe("46");
  });
});
