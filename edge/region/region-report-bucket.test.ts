import { describe, expect, it } from "vitest";
import { TokenBucket } from "./frame-budget.js";
import { RegionReport } from "./region-report.js";
import type { RegionSummary } from "./region-views.js";

/**
 * RegionReport's token bucket: after REPORT_BURST urgent reports, two more urgent changes inside
 * the 250 ms gap schedule the `report` timer at tokenAt + 250. When that timer fires exactly then,
 * the bucket holds 0.25*4 tokens summed in three pieces (0.06 + 0.564 + 0.376 in float:
 * 0.9999999999999999 < 1), take() fails, and due() returns early because the stale dueAt equals
 * the new time: no timer is left, dueAt is never reset, and no later non-urgent change ever gets
 * a timer again (soon(false) needs dueAt === null). Found in review (session 13): on the code before,
 * "report sent when the timer fired: expected 5 to be 6" and "a report timer for the batched
 * change: expected false to be true". Now the bucket counts a token due in pieces as whole, and a
 * fired timer is no longer due (RegionReport.fired, what region-alarms.ts calls).
 */
type Tab = { tabId: string; models: string[]; state: string; jobId: string | null };

describe("TokenBucket", () => {
  it("gives the token due after refills in pieces (0.06 + 0.564 + 0.376 of one)", () => {
    const bucket = new TokenBucket(4, 4, 0);
    for (let i = 0; i < 4; i++) expect(bucket.take(0)).toBe(true);
    expect(bucket.take(15)).toBe(false);
    expect(bucket.readyAt(15)).toBe(250);
    expect(bucket.take(156)).toBe(false);
    expect(bucket.take(250)).toBe(true);
    expect(bucket.take(250)).toBe(false);
  });
});

/**
 * A RegionReport with one tab, fake timers and a hand-moved clock, taken through the path above:
 * a membership report, a burst of 4 urgent reports at t0, two urgent changes that find no token
 * (at t0 + 15 and t0 + 156: the tab's models become ["m2"]), then the `report` timer firing at
 * t0 + 250 as region-alarms.ts runs it.
 */
async function dryBucketThenTimer() {
  const tabs: Tab[] = [{ tabId: "t1", models: ["m"], state: "idle", jobId: null }];
  const timers = new Map<string, number>();
  const sent: RegionSummary[] = [];
  const queue = { waiting: 0 };
  const report = new RegionReport(
    { all: () => tabs } as never,
    { waitingCount: () => queue.waiting } as never,
    {
      set: async (t: { kind: string }, at: number) => void timers.set(t.kind, at),
      clear: async (t: { kind: string }) => void timers.delete(t.kind),
      has: (t: { kind: string }) => timers.has(t.kind),
    } as never,
    async (s) => void sent.push(s),
    { state: () => "trusted" } as never,
  );
  const t0 = Date.now() + 10_000;
  const clock = { now: t0 };
  report.clock = () => clock.now;
  const flip = () => {
    tabs[0]!.state = tabs[0]!.state === "idle" ? "busy" : "idle";
  };

  await report.membership(); // idleModels known: "m"
  for (let i = 0; i < 4; i++) {
    flip(); // the model's last idle tab taken or freed: urgent
    await report.soon(false);
  }
  const sentInBurst = sent.length; // membership + the burst of 4, all at t0
  clock.now = t0 + 15;
  flip();
  await report.soon(false); // no token: timer at t0 + 250
  clock.now = t0 + 156;
  tabs[0]!.models = ["m2"]; // a status frame changed the tab's models (job-machine: soon(true))
  await report.soon(true); // no token: the same timer
  const dueAt = timers.get("report");
  clock.now = t0 + 250;
  // What region-alarms does when the timer table's alarm runs the `report` timer.
  if (dueAt !== undefined && dueAt <= clock.now) {
    timers.delete("report");
    await report.fired();
  }
  return { report, timers, sent, sentInBurst, dueAt, t0, clock, queue };
}

describe("RegionReport after its bucket runs dry", () => {
  it("still sends the region's last state when the report timer fires", async () => {
    const { sent, sentInBurst, dueAt, t0 } = await dryBucketThenTimer();
    expect(sentInBurst).toBe(5);
    expect(dueAt).toBe(t0 + 250);
    // The tab's models now (m2, busy) must reach the Directory.
    expect(sent.length, "report sent when the timer fired").toBe(6);
    expect(Object.keys(sent.at(-1)!.models)).toEqual(["m2"]);
  });

  it("a queue change later is still reported within the flip batch", async () => {
    const { report, timers, t0, clock, queue } = await dryBucketThenTimer();
    // Ten seconds later a job waits in the line (a non-urgent change: batched within 1 s).
    clock.now = t0 + 10_000;
    queue.waiting = 3;
    await report.soon(false);
    expect(timers.has("report"), "a report timer for the batched change").toBe(true);
  });
});
