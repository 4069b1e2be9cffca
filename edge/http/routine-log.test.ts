import { describe, expect, it } from "vitest";
import { RoutineCounts, SUMMARY_EVERY_MS } from "./routine-log.js";

describe("routine log lines", () => {
  it("counts are summarised at most once a period, then start again", () => {
    let now = 1_000;
    const counts = new RoutineCounts(() => now);
    counts.count("job assigned");
    counts.count("job assigned");
    counts.count("job queued");
    expect(counts.due()).toBeNull();
    now += SUMMARY_EVERY_MS;
    expect(counts.due()).toEqual({
      counts: { "job assigned": 2, "job queued": 1 },
      sinceMs: SUMMARY_EVERY_MS,
    });
    expect(counts.due()).toBeNull();
    now += SUMMARY_EVERY_MS;
    // Nothing counted: no line.
    expect(counts.due()).toBeNull();
  });
});
