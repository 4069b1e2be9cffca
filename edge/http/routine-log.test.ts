import { describe, expect, it } from "vitest";
import { isRoutine, RoutineCounts, SUMMARY_EVERY_MS } from "./routine-log.js";

describe("routine log lines", () => {
  it("a job's first placement is routine; a reassignment and other lines are printed", () => {
    expect(isRoutine("job assigned", { jobId: "j", attempt: 1 })).toBe(true);
    expect(isRoutine("job queued", { jobId: "j" })).toBe(true);
    expect(isRoutine("job assigned", { jobId: "j", attempt: 2 })).toBe(false);
    expect(isRoutine("job started", { jobId: "j" })).toBe(false);
  });

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
