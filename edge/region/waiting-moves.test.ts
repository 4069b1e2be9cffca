import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import {
  getJob,
  jobToken,
  regionCounts,
  streamFrom,
  streamText,
  tabRegions,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import { forgetRoutingCache } from "../directory/directory-client.js";

/**
 * A job already waiting in one region's line moves to another region whose tab can start it sooner
 * (waiting-moves.ts, docs/routing.md "Between regions"). The tabs speak the scripted tabs' default
 * (older) protocol, so no job can wait behind a busy tab: a request either gets an idle tab or waits
 * in a line.
 */
const ORIGIN = "http://tabgrid.test";
const FRANKFURT = { lat: 50.11, lon: 8.68 };
const LONDON = { lat: 51.51, lon: -0.13 };
const NEW_YORK = { lat: 40.71, lon: -74.01 };

const tabs = useTabs();
/** Long answers still streaming when a test ends (it failed before finishing them). */
const streams: Array<ReturnType<typeof setInterval>> = [];
afterEach(() => streams.splice(0).forEach(clearInterval));

const tabAt = (model: string, loc: { lat: number; lon: number }, protocol?: number) =>
  tabs.tab([model], { loc, protocol });

/**
 * Frankfurt's only tab busy with a long answer, then `n` London requests waiting in Frankfurt's
 * line (no other region serves the model yet), then an idle tab joining in New York.
 */
async function waitingThenIdleNextDoor(model: string, n = 1) {
  const home = await tabAt(model, FRANKFURT);
  const longRes = streamFrom(FRANKFURT, model, 4000);
  const long = await home.nextJob();
  home.accept(long);
  home.delta(long, 0, "first ");
  // The long answer keeps streaming (its lease would otherwise run out and move it elsewhere).
  let seq = 1;
  const streaming = setInterval(() => home.delta(long, seq++, "more "), 200);
  streams.push(streaming);
  const queuedBefore = (await regionCounts("weur")).queued ?? 0;
  const waiting: Response[] = [];
  for (let i = 0; i < n; i++) {
    const res = await streamFrom(LONDON, model, 64);
    expect(res.headers.get("x-tabgrid-region")).toBe("weur");
    expect(res.headers.get("x-tabgrid-job-id")).toMatch(/^job_weur_/);
    waiting.push(res);
  }
  expect((await regionCounts("weur")).queued).toBe(queuedBefore + n);
  const away = await tabAt(model, NEW_YORK);
  expect((await tabRegions(model)).sort()).toEqual(["enam", "weur"]);
  // The Region objects share this isolate's routing cache: its next pass sees the new tab.
  forgetRoutingCache();
  const finishLong = () => {
    clearInterval(streaming);
    home.done(long, "stop");
    return async () => expect((await streamText(await longRes)).done).toBe(true);
  };
  return { home, away, waiting, finishLong };
}

describe("a job waiting in a region's line moves to a region that can start it sooner", () => {
  it("is served by the idle tab that joined next door: the whole answer once, under the same job id", async () => {
    const { home, away, waiting, finishLong } = await waitingThenIdleNextDoor("mv-a");
    const [res] = waiting as [Response];
    const jobId = res.headers.get("x-tabgrid-job-id")!;
    const enamBefore = await regionCounts("enam");
    // Before: the job stayed in Frankfurt's line behind the long answer (and gave up waiting).
    const moved = await away.nextJob();
    expect(moved.id).toMatch(/^job_enam_/);
    away.serve(moved, ["served ", "from New York"]);
    expect(await streamText(res)).toEqual({ text: "served from New York", done: true });
    const view = await getJob(jobId);
    expect(view).toMatchObject({ state: "done", text: "served from New York" });
    expect(await regionCounts("enam")).toEqual({ ...enamBefore, done: (enamBefore.done ?? 0) + 1 });
    // Frankfurt's tab was never given it.
    expect(home.received.filter((m) => m.type === "job.assign")).toEqual([]);
    await finishLong()();
  });

  it("a neighbour whose offer turned out stale declines; the job keeps its place and is served at home", async () => {
    // Two jobs wait; one pass plans both from one routing view, in which New York's one tab is
    // idle. The first moves and takes that tab; New York then declines the second (its real offer
    // no longer beats waiting here) and stores nothing for it.
    const { home, away, waiting, finishLong } = await waitingThenIdleNextDoor("mv-b", 2);
    const [first, second] = waiting as [Response, Response];
    const enamBefore = await regionCounts("enam");
    const weurQueued = (await regionCounts("weur")).queued ?? 0;
    const moved = await away.nextJob();
    away.serve(moved, ["next door"]);
    expect(await streamText(first)).toEqual({ text: "next door", done: true });
    expect((await regionCounts("weur")).queued).toBe(weurQueued - 1);
    // Frankfurt's tab frees up and takes the job still in its line.
    const longEnded = finishLong();
    const atHome = await home.nextJob();
    expect(atHome.id).toBe(second.headers.get("x-tabgrid-job-id"));
    home.serve(atHome, ["at home"]);
    expect(await streamText(second)).toEqual({ text: "at home", done: true });
    expect(away.received.filter((m) => m.type === "job.assign")).toEqual([]);
    expect(await regionCounts("enam")).toEqual({ ...enamBefore, done: (enamBefore.done ?? 0) + 1 });
    await longEnded();
  });

  it("a client cancelling a moved job cancels it next door, and the tab there is told to stop", async () => {
    const { away, waiting, finishLong } = await waitingThenIdleNextDoor("mv-c");
    const [res] = waiting as [Response];
    const jobId = res.headers.get("x-tabgrid-job-id")!;
    const moved = await away.nextJob();
    away.accept(moved);
    away.delta(moved, 0, "Once ");
    const cancelled = await SELF.fetch(`${ORIGIN}/v1/jobs/${jobId}`, {
      method: "DELETE",
      headers: jobToken(res),
    });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as { state: string }).state).toBe("cancelled");
    expect((await away.next("job.cancel")).jobId).toBe(moved.id);
    const out = await streamText(res);
    expect(out.done).toBe(false);
    expect(out.text).toBe("Once ");
    expect((await getJob(moved.id)).state).toBe("cancelled");
    away.done(moved, "abort");
    await finishLong()();
  });

  it("when the tab next door leaves mid-answer, the job is not moved again: the origin's own tab continues it", async () => {
    const { home, away, waiting, finishLong } = await waitingThenIdleNextDoor("mv-d");
    const [res] = waiting as [Response];
    const jobId = res.headers.get("x-tabgrid-job-id")!;
    const moved = await away.nextJob();
    away.accept(moved);
    away.delta(moved, 0, "Once ");
    await finishLong()();
    away.close();
    // New York has no other tab and a continuation moves no further: it gives up there, and the
    // origin's tab, free by now, continues from the text delivered.
    const assign = await home.next("job.assign");
    expect(assign.job.id).toBe(jobId);
    expect(assign.continueFrom).toBe("Once ");
    home.serve(assign.job, ["upon a time"]);
    expect(await streamText(res)).toEqual({ text: "Once upon a time", done: true });
    expect((await getJob(moved.id)).state).toBe("failed");
  });
});
