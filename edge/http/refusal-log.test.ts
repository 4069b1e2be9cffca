import { describe, expect, it } from "vitest";
import { REFUSAL_LOG_BURST, RefusalLog } from "./refusal-log.js";

/** Every line the log would write, as [level, msg]. */
function recorder(clock: { t: number }) {
  const lines: Array<[string, string, Record<string, unknown>]> = [];
  const refusals = new RefusalLog(
    (level, msg, fields = {}) => lines.push([level, msg, fields]),
    () => clock.t,
  );
  return { lines, refusals };
}

describe("refused requests are logged within a budget per address", () => {
  it("a flood from one address writes its budget of lines and one warning, not a line each", () => {
    const clock = { t: 0 };
    const { lines, refusals } = recorder(clock);
    for (let i = 0; i < 1000; i++) refusals.refused("203.0.113.9", { requestId: `r${i}` });
    expect(lines.filter(([, msg]) => msg === "request failed")).toHaveLength(REFUSAL_LOG_BURST);
    expect(lines.filter(([level]) => level === "warn")).toHaveLength(1);
    expect(lines).toHaveLength(REFUSAL_LOG_BURST + 1);
  });

  it("another address is logged as usual, and a quiet address gets its lines back with a count", () => {
    const clock = { t: 0 };
    const { lines, refusals } = recorder(clock);
    for (let i = 0; i < 100; i++) refusals.refused("203.0.113.9", { requestId: `r${i}` });
    refusals.refused("198.51.100.1", { requestId: "other" });
    expect(lines.at(-1)?.[2]).toEqual({ requestId: "other" });
    // A minute later the flooder's address has 10 lines again; the first says what was skipped.
    clock.t = 60_000;
    const before = lines.length;
    refusals.refused("203.0.113.9", { requestId: "later" });
    expect(
      lines.slice(before).map(([level, msg, f]) => [level, msg, f.suppressed ?? f.requestId]),
    ).toEqual([
      ["warn", "refused requests not logged one by one", 100 - REFUSAL_LOG_BURST],
      ["info", "request failed", "later"],
    ]);
  });
});
