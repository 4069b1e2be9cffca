import { describe, expect, it } from "vitest";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import {
  appEnv,
  regionCounts,
  streamFrom,
  streamText,
  tabRegions,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import { directoryStub } from "../directory/directory-client.js";

/**
 * Spillover between regions by estimate (shared/scheduling/spillover.ts, docs/routing.md): a
 * request leaves its home region when a neighbour's reported offer beats what home can offer, and
 * a request nobody can take waits in the line expected to start it soonest.
 */
const FRANKFURT = { lat: 50.11, lon: 8.68 };
const LONDON = { lat: 51.51, lon: -0.13 };
const NEW_YORK = { lat: 40.71, lon: -74.01 };

const tabs = useTabs();

/** Idle tabs for `model` in `regions`, as the Directory has them. */
async function idleTabs(model: string, regions: string[]): Promise<number> {
  const snapshot = await directoryStub(appEnv).snapshot();
  return regions.reduce((n, r) => n + (snapshot[r]?.models[model]?.idle ?? 0), 0);
}

const tabAt = (model: string, loc: { lat: number; lon: number }, protocol?: number) =>
  tabs.tab([model], { loc, protocol });

/** The tab starts a job of `maxTokens` for a client next to it and streams its first words. */
async function busyWith(t: ScriptedTab, model: string, maxTokens: number, loc = FRANKFURT) {
  const res = streamFrom(loc, model, maxTokens);
  const job = await t.nextJob();
  t.accept(job);
  t.delta(job, 0, "first ");
  return { job, res };
}

describe("spillover by estimate", () => {
  it("a request whose home region has only a busy tab is served by an idle tab next door", async () => {
    // Home (weur) has one tab that can hold a job behind its running one, timed on one job and
    // now busy with a long answer; New York (enam) has an idle tab.
    const home = await tabAt("spill-a", FRANKFURT, QUEUE_SINCE_PROTOCOL);
    const warm = streamFrom(FRANKFURT, "spill-a", 16);
    home.serve(await home.nextJob(), ["warm"]);
    expect((await streamText(await warm)).done).toBe(true);
    const running = await busyWith(home, "spill-a", 4000);
    const away = await tabAt("spill-a", NEW_YORK, QUEUE_SINCE_PROTOCOL);
    expect((await tabRegions("spill-a")).sort()).toEqual(["enam", "weur"]);

    const homeJobs = await regionCounts("weur");
    // Before: home offered the slot behind its running job, and the request queued there.
    const resP = streamFrom(LONDON, "spill-a", 64);
    const job = await away.nextJob();
    away.serve(job, ["from New York"]);
    const res = await resP;
    expect(res.headers.get("x-tabgrid-region")).toBe("enam");
    expect(await streamText(res)).toEqual({ text: "from New York", done: true });
    expect(home.received.filter((m) => m.type === "job.assign")).toEqual([]);
    // Home declined without writing a job.
    expect(await regionCounts("weur")).toEqual(homeJobs);

    home.done(running.job, "stop");
    expect((await streamText(await running.res)).done).toBe(true);
  });

  it("home keeps a request when a neighbour offers no better (home first)", async () => {
    const home = await tabAt("spill-b", FRANKFURT);
    await tabAt("spill-b", NEW_YORK);
    const resP = streamFrom(LONDON, "spill-b", 64);
    home.serve(await home.nextJob(), ["from Frankfurt"]);
    const res = await resP;
    expect(res.headers.get("x-tabgrid-region")).toBe("weur");
    expect((await streamText(res)).text).toBe("from Frankfurt");
  });
});

describe("waiting", () => {
  it("a request nobody can take waits where a tab frees up first, and that tab serves it", async () => {
    // Both regions' only tabs are busy (an older protocol: no job can wait behind them), home's
    // with a long answer, New York's with a short one.
    const home = await tabAt("spill-c", FRANKFURT);
    const away = await tabAt("spill-c", NEW_YORK);
    const long = await busyWith(home, "spill-c", 4000);
    const short = await busyWith(away, "spill-c", 8, NEW_YORK);
    // Routing reads the regions' reports: both say their tab is busy (a region reports a model's
    // last idle tab taken at once within its report budget, region-report.ts, and the tests
    // before this one spent weur's).
    await expect.poll(() => idleTabs("spill-c", ["weur", "enam"])).toBe(0);

    // Before: it waited at home, behind the long answer.
    const resP = streamFrom(LONDON, "spill-c", 64);
    const waiting = await resP;
    expect(waiting.headers.get("x-tabgrid-region")).toBe("enam");
    away.done(short.job, "stop");
    expect((await streamText(await short.res)).done).toBe(true);
    const job = await away.nextJob();
    away.serve(job, ["served next door"]);
    expect(await streamText(waiting)).toEqual({ text: "served next door", done: true });
    expect(home.received.filter((m) => m.type === "job.assign")).toEqual([]);

    home.done(long.job, "stop");
    expect((await streamText(await long.res)).done).toBe(true);
  });
});
