import { SELF, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeVector } from "../../shared/protocol/embedding-vectors.js";
import { REGION_CENTRES } from "../../shared/geo/regions.js";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { embeddingOf } from "../../test/support/deterministic-engine.js";
import { ScriptedTab, newKeyPair } from "../../test/workerd/scripted-tab.js";
import {
  appEnv,
  chat,
  getJob,
  jobToken,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import type { JobRequest } from "./job-request.js";
import { regionStub, shardOfJobId, shardStub } from "./region-stub.js";

/**
 * Jobs queued behind a busy tab (protocol 5): the coordinator may hand a busy tab one job to
 * start the moment its running one ends, and failover and cancellation still hold for it.
 */
const tabs = useTabs();

/** A tab that speaks protocol 5 and so may be given a job queued behind its running one. */
async function queueingTab(models: string[]): Promise<ScriptedTab> {
  const t = await ScriptedTab.connect(models, undefined, undefined, QUEUE_SINCE_PROTOCOL);
  tabs.list.push(t);
  return t;
}

/** The tab serves one whole request, so the coordinator has timed a job on it. */
async function timedOnce(t: ScriptedTab, model: string): Promise<void> {
  const res = chat(model, { stream: true });
  t.serve(await t.nextJob(), ["warm"]);
  expect((await streamText(await res)).done).toBe(true);
}

/**
 * The tab takes a request and starts streaming it; returns the job. It is timed first: the
 * coordinator queues a job only behind a tab it has timed one job on (docs/routing.md).
 */
async function busyWith(t: ScriptedTab, model: string, timed = true) {
  if (timed) await timedOnce(t, model);
  const res = chat(model, { stream: true });
  const job = await t.nextJob();
  t.accept(job);
  t.delta(job, 0, "first ");
  return { job, res };
}

describe("a job queued behind a busy tab", () => {
  it("is served by that tab after its current job, with the wait covered by its lease", async () => {
    const t = await queueingTab(["q-serve"]);
    const one = await busyWith(t, "q-serve");
    const twoRes = chat("q-serve", { stream: true });
    const assign = await t.next("job.assign");
    expect(assign.queued).toBe(true);
    expect((await getJob(assign.job.id)).state).toBe("assigned");
    // The job ahead runs for longer than the accept lease (ACCEPT_MS in the test config) while
    // it streams; the queued job must stay on this tab all that time. The wait is the point here.
    for (let seq = 1; seq <= 4; seq++) {
      await new Promise((r) => setTimeout(r, 500));
      t.delta(one.job, seq, ".");
    }
    t.done(one.job, "stop");
    expect((await streamText(await one.res)).done).toBe(true);
    t.serve(assign.job, ["second"]);
    expect(await streamText(await twoRes)).toEqual({ text: "second", done: true });
    const view = await getJob(assign.job.id);
    expect(view.attempts).toBe(1);
    expect(t.received.filter((m) => m.type === "job.cancel")).toEqual([]);
  }, 10_000); // ~2 s of deliberate waiting plus a warm-up job, on a shared machine

  it("is dropped by the tab when the client cancels it, and the tab's current job goes on", async () => {
    const t = await queueingTab(["q-cancel"]);
    const one = await busyWith(t, "q-cancel");
    const twoRes = chat("q-cancel", { stream: true });
    const queued = (await t.next("job.assign")).job;
    const two = await twoRes;
    const del = await SELF.fetch(`http://tabgrid.test/v1/jobs/${queued.id}`, {
      method: "DELETE",
      headers: jobToken(two),
    });
    expect(del.status).toBe(200);
    expect((await t.next("job.cancel")).jobId).toBe(queued.id);
    expect((await streamText(two)).error).toBeDefined();
    t.delta(one.job, 1, "done");
    t.done(one.job, "stop");
    expect(await streamText(await one.res)).toEqual({ text: "first done", done: true });
    // The tab is free again: the next request runs on it at once, not queued.
    const threeRes = chat("q-cancel", { stream: true });
    const three = await t.next("job.assign");
    expect(three.queued).toBeUndefined();
    t.serve(three.job, ["third"]);
    expect((await streamText(await threeRes)).text).toBe("third");
  });

  it("moves to another tab when its tab leaves, as the running job does", async () => {
    const t = await queueingTab(["q-leave"]);
    const one = await busyWith(t, "q-leave");
    const twoRes = chat("q-leave", { stream: true });
    const queued = (await t.next("job.assign")).job;
    const rescuer = await tabs.tab(["q-leave"]);
    t.close();
    // The rescuer (protocol 2: never sent a queued job) serves both, one after the other.
    const served = new Map<string, string>();
    for (let i = 0; i < 2; i++) {
      const a = await rescuer.next("job.assign");
      expect(a.queued).toBeUndefined();
      const text = a.job.id === queued.id ? "second" : "rest";
      served.set(a.job.id, a.continueFrom ?? "");
      rescuer.serve(a.job, [text]);
    }
    expect(served.get(queued.id)).toBe("");
    expect(served.get(one.job.id)).toBe("first ");
    expect(await streamText(await twoRes)).toEqual({ text: "second", done: true });
    expect(await streamText(await one.res)).toEqual({ text: "first rest", done: true });
  });

  it("behind an embedding job starts when that job is done, and is served there", async () => {
    const model = "snowflake-arctic-embed-s-q0f32-MLC-b4";
    const t = await queueingTab(["q-embed", model]);
    const embed = (text: string) =>
      SELF.fetch("http://tabgrid.test/v1/embeddings", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, input: text }),
      });
    const answer = (job: { id: string }, text: string) => {
      t.send({
        type: "job.vectors",
        jobId: job.id,
        index: 0,
        vectors: [encodeVector(embeddingOf(text, 384))],
      });
      t.done(job, "stop", { prompt_tokens: 2, completion_tokens: 0 });
    };
    // Timed once, so the coordinator may queue behind it.
    await timedOnce(t, "q-embed");
    const oneRes = embed("one");
    const one = await t.nextJob();
    t.accept(one);
    const twoRes = embed("two");
    const two = await t.next("job.assign");
    expect(two.queued).toBe(true);
    answer(one, "one");
    expect((await oneRes).status).toBe(200);
    // As a tab does: the queued job starts the moment the one ahead is done.
    t.accept(two.job);
    answer(two.job, "two");
    const res = await twoRes;
    expect(res.status).toBe(200);
    expect(await getJob(two.job.id)).toMatchObject({ state: "done", attempts: 1 });
  });

  it("moves to another tab when its tab is quarantined, as the running job does", async () => {
    const t = await ScriptedTab.connect(
      ["q-quar"],
      await newKeyPair(),
      undefined,
      QUEUE_SINCE_PROTOCOL,
    );
    tabs.list.push(t);
    const one = await busyWith(t, "q-quar");
    const twoRes = chat("q-quar", { stream: true });
    const queued = (await t.next("job.assign")).job;
    const rescuer = await tabs.tab(["q-quar"]);
    await regionStub(appEnv, "wnam").quarantine(t.nodeId, "operator: serving a renamed model");
    await expect
      .poll(() => t.received.filter((m) => m.type === "job.cancel").map((m) => m.jobId))
      .toContain(one.job.id);
    // As a tab does when its running job is cancelled, it starts the queued one: none of it may
    // reach the client, and the rescuer serves both jobs, one after the other.
    t.accept(queued);
    t.delta(queued, 0, "from a quarantined tab");
    t.done(queued, "stop", { prompt_tokens: 1, completion_tokens: 4 });
    const served = new Map<string, string>();
    for (let i = 0; i < 2; i++) {
      const a = await rescuer.next("job.assign");
      const text = a.job.id === queued.id ? "second" : "rest";
      served.set(a.job.id, a.continueFrom ?? "");
      rescuer.serve(a.job, [text]);
    }
    expect(served.get(queued.id)).toBe("");
    expect(await streamText(await twoRes)).toEqual({ text: "second", done: true });
    expect(await streamText(await one.res)).toEqual({ text: "first rest", done: true });
    const cancelled = t.received.filter((m) => m.type === "job.cancel").map((m) => m.jobId);
    expect(cancelled.sort()).toEqual([one.job.id, queued.id].sort());
  });

  it("moves to another tab when the job ahead ends and the tab never starts it", async () => {
    const t = await queueingTab(["q-stuck"]);
    const one = await busyWith(t, "q-stuck");
    const twoRes = chat("q-stuck", { stream: true });
    const queued = (await t.next("job.assign")).job;
    t.done(one.job, "stop");
    await streamText(await one.res);
    // The tab goes quiet instead of starting the queued job: its accept lease runs out.
    const rescuer = await tabs.tab(["q-stuck"]);
    const moved = await rescuer.next("job.assign");
    expect(moved.job.id).toBe(queued.id);
    rescuer.serve(moved.job, ["saved"]);
    expect(await streamText(await twoRes)).toEqual({ text: "saved", done: true });
  });

  it("moves to a tab that frees up first, and the tab it waited on is told to drop it", async () => {
    const a = await queueingTab(["q-move"]);
    const first = await busyWith(a, "q-move");
    const b = await queueingTab(["q-move"]);
    // b is timed too (a is busy, so b serves it), then takes a job of its own.
    const second = await busyWith(b, "q-move");
    // Both busy and timed: the next request is queued behind one of them.
    const thirdRes = chat("q-move", { stream: true });
    // One waiter per tab: the first to resolve is the queued job; the other gets the move.
    const toA = a.next("job.assign");
    const toB = b.next("job.assign");
    const onA = await Promise.race([toA.then(() => true), toB.then(() => false)]);
    const queued = await (onA ? toA : toB);
    const [holder, other, ahead] = onA ? [a, b, second] : [b, a, first];
    expect(queued.queued).toBe(true);
    // The other tab's job ends first: it takes the queued job at once.
    other.done(ahead.job, "stop");
    await streamText(await ahead.res);
    const moved = await (onA ? toB : toA);
    expect(moved.job.id).toBe(queued.job.id);
    expect(moved.queued).toBeUndefined();
    expect((await holder.next("job.cancel")).jobId).toBe(queued.job.id);
    other.serve(moved.job, ["third"]);
    expect(await streamText(await thirdRes)).toEqual({ text: "third", done: true });
  });

  it("is not queued when the Worker asks for an idle tab only (another shard has one): refused, nothing written", async () => {
    const t = await queueingTab(["q-idle-only"]);
    const one = await busyWith(t, "q-idle-only");
    const request: JobRequest = {
      job: {
        model: "q-idle-only",
        input: { kind: "chat", messages: [{ role: "user", content: "hi" }] },
        sampling: { max_tokens: 16 },
      },
      requestId: "req_idle_only",
      owner: null,
      detachGraceMs: 1000,
      priority: 0,
      match: { clientLocation: null, promptTokens: 1, maxTokens: 16, stream: true },
    };
    const stub = regionStub(appEnv, "wnam");
    const refused = await stub.openJob({ ...request, idleOnly: true }, false);
    expect(refused).toMatchObject({ ok: false, error: { code: "no_capacity" } });
    expect(refused).not.toHaveProperty("offerMs");
    // Asked again without it (no other shard took it), the busy tab takes it behind its job.
    const taken = await stub.openJob(request, false);
    if (!taken.ok) throw new Error(`not taken: ${taken.error.message}`);
    const assign = await t.next("job.assign");
    expect(assign).toMatchObject({ queued: true, job: { id: taken.jobId } });
    await taken.events.cancel();
    t.done(one.job, "stop");
    expect((await streamText(await one.res)).done).toBe(true);
  });

  it("is not held by a tab no job has been timed on: it waits and runs there once the tab is free", async () => {
    const t = await queueingTab(["q-untimed"]);
    const one = await busyWith(t, "q-untimed", false);
    // The request is answered with its job's headers while the job waits for a tab.
    const two = await chat("q-untimed", { stream: true });
    const twoId = two.headers.get("x-tabgrid-job-id") ?? "";
    expect((await getJob(twoId)).state).toBe("queued");
    t.delta(one.job, 1, "done");
    t.done(one.job, "stop");
    expect((await streamText(await one.res)).done).toBe(true);
    const assign = await t.next("job.assign");
    expect(assign.job.id).toBe(twoId);
    expect(assign.queued).toBeUndefined();
    t.serve(assign.job, ["second"]);
    expect(await streamText(two)).toEqual({ text: "second", done: true });
  });

  it("waits for its tab when the tab rests after the job ahead (GPU share), and counts no fault", async () => {
    const t = await queueingTab(["q-rest"]);
    const one = await busyWith(t, "q-rest");
    const twoRes = chat("q-rest", { stream: true });
    const queued = (await t.next("job.assign")).job;
    // The job ahead ends and the tab rests (its GPU share): it refuses the queued job, paused.
    t.send({
      type: "job.done",
      jobId: one.job.id,
      finishReason: "stop",
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
      state: "paused",
    });
    expect((await streamText(await one.res)).done).toBe(true);
    t.send({
      type: "job.error",
      jobId: queued.id,
      error: { code: "no_capacity", message: "this tab is paused" },
      state: "paused",
    });
    // The rest outlasts REDISPATCH_WAIT_MS (1 s in the test config) but not QUEUE_WAIT_MS
    // (1.5 s): the job waits as a queued request does, not as a failed-over one.
    await new Promise((r) => setTimeout(r, 1200));
    t.send({ type: "status", state: "idle", models: ["q-rest"] });
    const again = await t.next("job.assign");
    expect(again.job.id).toBe(queued.id);
    t.serve(again.job, ["second"]);
    expect(await streamText(await twoRes)).toEqual({ text: "second", done: true });
    // Resting is the contributor's choice, not a fault of the tab.
    const nodes = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
      data: { models: string[]; trust?: { faults: number } }[];
    };
    const mine = nodes.data.find((n) => n.models.includes("q-rest"));
    expect(mine?.trust?.faults).toBe(0);
  }, 10_000);

  it("takes no frame of it before the job ahead ends: one job at a time, and it moves with its tab", async () => {
    const t = await queueingTab(["q-early"]);
    const one = await busyWith(t, "q-early");
    const twoRes = chat("q-early", { stream: true });
    const two = await t.next("job.assign");
    expect(two.queued).toBe(true);
    // Started early, while the job ahead runs: frames of a job not running on this tab.
    t.accept(two.job);
    t.delta(two.job, 0, "early ");
    t.done(one.job, "stop");
    expect((await streamText(await one.res)).done).toBe(true);
    // The queued job runs now: a third request is queued behind it, not run beside it.
    const threeRes = chat("q-early", { stream: true });
    const three = await t.next("job.assign");
    expect(three.queued).toBe(true);
    // The tab leaves: both move at once, the running one first, from no text.
    const rescuer = await tabs.tab(["q-early"]);
    t.close();
    const again = await rescuer.next("job.assign");
    expect(again.job.id).toBe(two.job.id);
    expect(again.continueFrom).toBeUndefined();
    rescuer.serve(again.job, ["second"]);
    const last = await rescuer.next("job.assign");
    expect(last.job.id).toBe(three.job.id);
    rescuer.serve(last.job, ["third"]);
    expect(await streamText(await twoRes)).toEqual({ text: "second", done: true });
    expect(await streamText(await threeRes)).toEqual({ text: "third", done: true });
  });

  it("is still queued on its tab after the Region object is evicted, and served there", async () => {
    // An object is only evicted with no request in flight: the clients drop their streams first,
    // having asked for a long resume grace. In Johannesburg's Region object, which no other test
    // file uses: a test file running beside this one keeps requests in flight to its own region's
    // object (wnam's), and its eviction would wait for them.
    const loc = REGION_CENTRES.afr;
    const from = { "x-tabgrid-location": `${loc.lat},${loc.lon}` };
    const t = await ScriptedTab.connect(["q-evict"], undefined, loc, QUEUE_SINCE_PROTOCOL);
    tabs.list.push(t);
    const warm = chat("q-evict", { stream: true }, from);
    t.serve(await t.nextJob(), ["warm"]);
    expect((await streamText(await warm)).done).toBe(true);
    const grace = { stream: true, tabgrid: { resume_grace_ms: 30_000 } };
    let twoJob: { id: string } | undefined;
    const oneRes = await chat("q-evict", grace, from);
    const one = await t.nextJob();
    expect(one.id).toMatch(/^job_afr_/);
    t.accept(one);
    // The job ahead prefills through the eviction, saying so as a tab does (job.progress renews
    // its lease before the first token): the steps below may take longer than the tests' short
    // lease (LEASE_MS 1,500) on a loaded machine, and a job whose tab looked silent would move.
    const prefilling = setInterval(
      () => t.send({ type: "job.progress", jobId: one.id, phase: "prefill" }),
      250,
    );
    try {
      const twoRes = await chat("q-evict", grace, from);
      const two = await t.next("job.assign");
      expect(two.queued).toBe(true);
      await oneRes.body?.cancel();
      await twoRes.body?.cancel();
      await evictDurableObject(shardStub(appEnv, shardOfJobId(one.id)!));
      twoJob = two.job;
    } finally {
      clearInterval(prefilling);
    }
    // Rebuilt from the sockets and the job records: the job ahead is the tab's, this one waits.
    t.delta(one, 0, "first done");
    t.done(one, "stop");
    const two = twoJob!;
    t.serve(two, ["second"]);
    await expect.poll(async () => (await getJob(two.id)).state).toBe("done");
    expect(await getJob(two.id)).toMatchObject({ text: "second", attempts: 1 });
    expect(await getJob(one.id)).toMatchObject({ state: "done", text: "first done" });
  }, 15_000);
});
