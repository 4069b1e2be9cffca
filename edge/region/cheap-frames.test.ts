import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { doneFrame, firstContent, holdBatches } from "../../test/workerd/held-batches.js";
import { regionStub } from "./region-stub.js";
import {
  appEnv,
  chat,
  getJob,
  jobToken,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";

const { tab } = useTabs();

/** Rows of job_chunks written for a job so far. */
function chunkRows(jobId: string): Promise<number> {
  return runInDurableObject(
    regionStub(appEnv, "wnam"),
    (_obj, ctx) =>
      ctx.storage.sql
        .exec<{ n: number }>(`SELECT count(*) AS n FROM job_chunks WHERE job_id = ?`, jobId)
        .one().n,
  );
}

describe("cheap frames: a job's text is appended in batches", () => {
  it("a long answer reads back whole while its deltas are still in an unwritten batch", async () => {
    const t = await tab(["cf-long"]);
    await holdBatches();
    const res = chat("cf-long", { stream: true, max_tokens: 500 });
    const job = await t.nextJob();
    t.accept(job);
    const pieces = Array.from({ length: 300 }, (_, i) => `t${i} `);
    let offset = 0;
    pieces.forEach((text, seq) => {
      t.send({ type: "job.delta", jobId: job.id, seq, text, offset });
      offset += text.length;
    });
    // Nothing written yet; a reader of the job (GET) still sees every delta.
    await expect.poll(async () => (await getJob(job.id)).text).toBe(pieces.join(""));
    t.done(job, "stop");
    expect((await streamText(await res)).text).toBe(pieces.join(""));
    expect((await getJob(job.id)).text).toBe(pieces.join(""));
  });
});

describe("the Region object is evicted before it wrote a batch", () => {
  it("the tab resends from the offset the coordinator holds and nothing is lost", async () => {
    const t = await tab(["cf-evict"]);
    await holdBatches();
    const res = await chat("cf-evict", { stream: true, tabgrid: { resume_grace_ms: 30_000 } });
    const job = await t.nextJob();
    t.accept(job);
    // The first delta is written with the first token's time; the second waits for its batch.
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "be", offset: 0 });
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "fore ", offset: 2 });
    // The client saw "before " (relayed at once) but the object has written only "be".
    expect((await firstContent(res, 2)).join("")).toBe("before ");
    expect(await chunkRows(job.id)).toBe(1);
    await evictDurableObject(regionStub(appEnv, "wnam"));
    // The next delta starts past what the new instance holds: it asks for the rest.
    t.send({ type: "job.delta", jobId: job.id, seq: 2, text: "after", offset: 7 });
    const resend = await t.next("job.resend");
    expect(resend).toEqual({ type: "job.resend", jobId: job.id, offset: 2 });
    t.send({ type: "job.delta", jobId: job.id, seq: 3, text: "fore after", offset: 2 });
    t.send({ ...doneFrame(job.id), chars: 12 });
    await expect.poll(async () => (await getJob(job.id)).state).toBe("done");
    expect((await getJob(job.id)).text).toBe("before after");
    // The client resumes after what it read: the rest, neither repeated nor missing.
    const rest = await SELF.fetch(`http://tabgrid.test/v1/jobs/${job.id}/stream?after=7`, {
      headers: jobToken(res),
    });
    expect(await streamText(rest)).toEqual({ text: "after", done: true });
  });

  it("a resend that overlaps text already held adds only what is new", async () => {
    const t = await tab(["cf-overlap"]);
    const res = chat("cf-overlap", { stream: true });
    const job = await t.nextJob();
    t.accept(job);
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "abc", offset: 0 });
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "bcdef", offset: 1 });
    t.send({ type: "job.delta", jobId: job.id, seq: 2, text: "de", offset: 3 });
    t.send({ ...doneFrame(job.id), chars: 6 });
    expect(await streamText(await res)).toEqual({ text: "abcdef", done: true });
  });
});
