import { describe, expect, it } from "vitest";
import { addToDay, localDay, type JobRow } from "./ledger-db.js";

const job = (over: Partial<JobRow>): JobRow => ({
  jobId: "j",
  at: new Date(2026, 10, 23, 12).getTime(),
  day: "2026-11-23",
  model: "m",
  outcome: "done",
  promptTokens: 3,
  completionTokens: 10,
  durationMs: 500,
  decodeTokensPerSecond: 20,
  credit: null,
  ...over,
});

describe("daily totals", () => {
  it("names the local calendar day", () => {
    expect(localDay(new Date(2026, 0, 5, 23, 59).getTime())).toBe("2026-01-05");
  });

  it("counts done jobs and their tokens; failed jobs only GPU time; credit stays null until reported", () => {
    let d = addToDay(undefined, job({}));
    d = addToDay(d, job({ outcome: "failed", completionTokens: 7 }));
    d = addToDay(d, job({ outcome: "aborted", completionTokens: 4 }));
    expect(d).toEqual({ day: "2026-11-23", jobs: 1, tokens: 14, gpuMs: 1500, credit: null });
    expect(addToDay(d, job({ credit: 2.5 })).credit).toBe(2.5);
  });
});
