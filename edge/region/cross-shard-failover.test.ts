import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { forgetRoutingCache } from "../directory/directory-client.js";
import {
  appEnv,
  chat,
  getJob,
  jobToken,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import {
  addressesOn,
  idleOn,
  sharded,
  tabFrom,
  untilRouting,
} from "../../test/workerd/shard-helpers.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import type { RegionParts } from "./region-parts.js";
import { shardStub } from "./region-stub.js";

const { list, tab } = useTabs();
const ORIGIN = "http://tabgrid.test";

/**
 * wnam as two shards; a streamed request running on shard 0's only tab, which has sent `sent`;
 * then an idle tab on shard 1, reported to the Directory. The caller makes shard 0's tab leave.
 */
async function streamingOnShard0(
  model: string,
  sent: string,
  extra: object = {},
  protocolB?: number,
) {
  await sharded(2);
  const a = await tabFrom(list, addressesOn(0, 2, 1, `${model}-a`)[0]!, [model]);
  const res = chat(model, { stream: true, ...extra });
  const job = await a.nextJob();
  expect(job.id).toMatch(/^job_wnam_[0-9a-f]{32}$/);
  a.accept(job);
  a.delta(job, 0, sent);
  const b = await tabFrom(list, addressesOn(1, 2, 1, `${model}-b`)[0]!, [model], protocolB);
  await untilRouting((r) => idleOn(r, "wnam/1", model) === 1);
  forgetRoutingCache();
  return { a, b, job, res: await res };
}

/** The continuation shard 1's tab is given once shard 0's tab left. */
async function movedTo(b: ScriptedTab, sent: string) {
  const assign = await b.next("job.assign");
  expect(assign.job.id).toMatch(/^job_wnam-1_[0-9a-f]{32}$/);
  expect(assign.continueFrom).toBe(sent);
  return assign.job;
}

describe("failover across the shards of a region", () => {
  it("a continuation whose delivered bytes reach max_tokens goes to a sibling shard's tab that counts them, never to an older one", async () => {
    // 11 bytes against max_tokens 4: only a tab's own count can say what is left (answer-budget.ts).
    const counting = await streamingOnShard0("xs-count", "Hello there", { max_tokens: 4 }, 8);
    counting.a.close();
    const assign = await counting.b.next("job.assign");
    expect(assign).toMatchObject({ continueFrom: "Hello there", answerMaxTokens: 4 });
    counting.b.accept(assign.job);
    counting.b.delta(assign.job, 0, " friend");
    counting.b.done(assign.job, "stop", { prompt_tokens: 5, completion_tokens: 1 }, 2);
    expect(await streamText(counting.res)).toEqual({ text: "Hello there friend", done: true });

    // The same with a sibling tab that speaks protocol 4: it is not given the job (it would need a
    // budget the client did not grant); the answer ends as it stands once the wait runs out.
    const older = await streamingOnShard0("xs-old", "Hello there", { max_tokens: 4 });
    let offered = false;
    void older.b.next("job.assign").then(() => (offered = true));
    older.a.close();
    const body = await older.res.text();
    expect(body).toContain('"finish_reason":"length"');
    expect((await getJob(older.job.id)).state).toBe("done");
    expect(offered).toBe(false);
  });

  it("a job whose shard has no other tab continues on a sibling shard: one stream, nothing missing or repeated, usage once", async () => {
    const { a, b, job, res } = await streamingOnShard0("xs-move", "The quick ", { max_tokens: 40 });
    a.close();
    const moved = await movedTo(b, "The quick ");
    // max_tokens holds for the whole answer: the 10 bytes delivered are charged at their bound.
    expect(moved.sampling.max_tokens).toBe(30);
    b.accept(moved);
    b.delta(moved, 0, "brown ");
    // A client resuming by the job's id (its shard is the origin) mid-move gets the whole text.
    const resumed = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream?after=0`, {
      headers: jobToken(res),
    });
    expect(resumed.status).toBe(200);
    b.delta(moved, 1, "fox");
    b.done(moved, "stop", { completion_tokens: 2 });
    expect(await streamText(res)).toEqual({ text: "The quick brown fox", done: true });
    expect(await streamText(resumed)).toEqual({ text: "The quick brown fox", done: true });
    // The tab that wrote the rest is credited with its own tokens, on its own shard.
    expect((await b.next("job.credit")).credit).toBe(2);
    // The job stays shard 0's: done, two attempts, usage counted once over the whole answer (the
    // first tab's 10 bytes at their bound plus the 2 tokens the second generated), as a failover
    // within one shard counts it (failover.test.ts).
    const view = await getJob(job.id);
    expect(view).toMatchObject({ state: "done", attempts: 2, text: "The quick brown fox" });
    expect(view.usage?.completion_tokens).toBe(12);
    // The continuation on shard 1 is a job of its own there, done with the same usage.
    const there = await getJob(moved.id);
    expect(there).toMatchObject({ state: "done", attempts: 1 });
    expect(there.usage?.completion_tokens).toBe(12);
    // And after the end, a resume from the start by the job's id returns the whole text.
    const again = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream?after=0`, {
      headers: jobToken(res),
    });
    expect(await streamText(again)).toEqual({ text: "The quick brown fox", done: true });
  });

  it("cancelling the job on its origin shard cancels the continuation and stops its tab", async () => {
    const { a, b, job, res } = await streamingOnShard0("xs-cancel", "Once ");
    a.close();
    const moved = await movedTo(b, "Once ");
    b.accept(moved);
    b.delta(moved, 0, "upon");
    const cancelled = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}`, {
      method: "DELETE",
      headers: jobToken(res),
    });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as { state: string }).state).toBe("cancelled");
    expect((await b.next("job.cancel")).jobId).toBe(moved.id);
    const out = await streamText(res);
    expect(out.done).toBe(false);
    expect(out.text).toBe("Once upon");
    expect((await getJob(moved.id)).state).toBe("cancelled");
    // Frames the stopped tab still sends reach nobody.
    b.delta(moved, 1, " a time");
    b.done(moved, "abort");
    expect((await getJob(job.id)).text).toBe("Once upon");
  });

  it("when the continuing shard's tab fails too, the client gets the usual failover error", async () => {
    const shard1 = shardStub(appEnv, { hint: "wnam", k: 1 });
    const before = await shard1.jobCounts();
    const { a, b, job, res } = await streamingOnShard0("xs-fail", "Half ");
    a.close();
    const moved = await movedTo(b, "Half ");
    b.accept(moved);
    b.delta(moved, 0, "way");
    b.close();
    const out = await streamText(res);
    expect(out.done).toBe(false);
    expect(out.text).toBe("Half way");
    expect(out.error).toMatch(/the serving tab left .*; no other tab could take over in time/);
    const view = await getJob(job.id);
    expect(view.state).toBe("failed");
    expect(view.error?.code).toBe("node_gone");
    // The continuation was not moved on again: shard 1's job failed there, and no third job exists.
    expect((await getJob(moved.id)).state).toBe("failed");
    expect(await shard1.jobCounts()).toEqual({ ...before, failed: (before.failed ?? 0) + 1 });
  });

  it("a stop string straddling the move ends the answer at the origin, which stops the continuation", async () => {
    const { a, b, job, res } = await streamingOnShard0("xs-stop", "The quick f", { stop: ["fox"] });
    a.close();
    const moved = await movedTo(b, "The quick f");
    b.accept(moved);
    // Neither tab sees "fox" whole; the origin, holding both parts, does.
    b.delta(moved, 0, "ox jumps");
    expect((await b.next("job.cancel")).jobId).toBe(moved.id);
    expect(await streamText(res)).toEqual({ text: "The quick f", done: true });
    expect(await getJob(job.id)).toMatchObject({ state: "done", finish_reason: "stop" });
    expect((await getJob(moved.id)).state).toBe("cancelled");
  });

  it("an origin restarted while its job runs on another shard reads it again and finishes the job", async () => {
    // An object is not evicted while a request is in flight, and its read of the continuation is
    // one: the origin loses that read only with a restart (a deploy, a crash). Here the read is
    // dropped as a restart drops it, with the client's stream (which asked for a long resume
    // grace), and then the object is evicted.
    const { a, b, job, res } = await streamingOnShard0("xs-evict", "Before ", {
      tabgrid: { resume_grace_ms: 30_000 },
    });
    a.close();
    const moved = await movedTo(b, "Before ");
    b.accept(moved);
    b.delta(moved, 0, "the ");
    await expect.poll(async () => (await getJob(job.id)).text).toBe("Before the ");
    await res.body?.cancel();
    const origin = shardStub(appEnv, { hint: "wnam", k: 0 });
    await runInDurableObject(origin, (obj) => {
      (obj as unknown as { parts: RegionParts }).parts.remote?.stop(job.id);
    });
    await evictDurableObject(origin);
    b.delta(moved, 1, "move");
    b.done(moved, "stop");
    // Any call wakes the origin; it reads the continuation again after the text it holds.
    await expect.poll(async () => (await getJob(job.id)).state).toBe("done");
    expect((await getJob(job.id)).text).toBe("Before the move");
    const rest = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream?after=0`, {
      headers: jobToken(res),
    });
    expect(await streamText(rest)).toEqual({ text: "Before the move", done: true });
  });

  it("with no other shard of its hint, a job continues in the next region by the spillover ranking", async () => {
    // weur is one shard: its only tab streams the job of a client in Frankfurt; the next regions
    // with a tab for the model are enam (New York) and apac (Singapore).
    const frankfurt = { lat: 50.11, lon: 8.68 };
    const home = await tab(["xs-hint"], { loc: frankfurt });
    forgetRoutingCache();
    const resP = chat("xs-hint", { stream: true }, { "x-tabgrid-location": "50.11,8.68" });
    const job = await home.nextJob();
    expect(job.id).toMatch(/^job_weur_/);
    home.accept(job);
    home.delta(job, 0, "Guten ");
    const far = await tab(["xs-hint"], { loc: { lat: 1.35, lon: 103.82 } });
    const near = await tab(["xs-hint"], { loc: { lat: 40.71, lon: -74.01 } });
    await untilRouting(
      (r) => idleOn(r, "enam", "xs-hint") === 1 && idleOn(r, "apac", "xs-hint") === 1,
    );
    home.close();
    const assign = await near.next("job.assign");
    expect(assign.job.id).toMatch(/^job_enam_/);
    expect(assign.continueFrom).toBe("Guten ");
    near.serve(assign.job, ["Tag"]);
    expect(await streamText(await resP)).toEqual({ text: "Guten Tag", done: true });
    expect((await getJob(job.id)).state).toBe("done");
    expect(far.received.filter((m) => m.type === "job.assign")).toEqual([]);
  });

  it("a continuation never moves on; its origin takes the job back when a tab of its own is free", async () => {
    const { a, b, job, res } = await streamingOnShard0("xs-back", "To ");
    a.close();
    const moved = await movedTo(b, "To ");
    b.accept(moved);
    b.delta(moved, 0, "and ");
    // A tab joins the origin shard while the job runs on shard 1; then shard 1's tab leaves.
    const home = await tabFrom(list, addressesOn(0, 2, 1, "xs-back-home")[0]!, ["xs-back"]);
    b.close();
    // Shard 1 does not hand its continuation to shard 0 (one hop): it waits, fails, and the
    // origin gives the job to its own new tab, continuing after all the text.
    const back = await home.next("job.assign");
    expect(back.job.id).toBe(job.id);
    expect(back.continueFrom).toBe("To and ");
    home.serve(back.job, ["fro"]);
    expect(await streamText(res)).toEqual({ text: "To and fro", done: true });
    expect((await getJob(job.id)).attempts).toBe(3);
  });
});
