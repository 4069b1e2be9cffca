import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { doneFrame, firstContent, holdBatches } from "../../test/workerd/held-batches.js";
import { regionStub } from "./region-stub.js";
import { appEnv, chat, getJob, useTabs } from "../../test/workerd/tab-helpers.js";

// One eviction per file: a second graceful eviction in the same file waits on the first
// instance's leftovers (see cheap-frames.test.ts for the delta case).
const { tab } = useTabs();

describe("the Region object is evicted before it wrote the batch before job.done", () => {
  it("a job.done that says more was sent than is held waits for the resend", async () => {
    const t = await tab(["cf-done"]);
    await holdBatches();
    const res = await chat("cf-done", { stream: true, tabgrid: { resume_grace_ms: 30_000 } });
    const job = await t.nextJob();
    t.accept(job);
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "all ", offset: 0 });
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "of it", offset: 4 });
    expect((await firstContent(res, 2)).join("")).toBe("all of it");
    await evictDurableObject(regionStub(appEnv, "wnam"));
    t.send({ ...doneFrame(job.id), chars: 9 });
    expect(await t.next("job.resend")).toMatchObject({ jobId: job.id, offset: 4 });
    expect((await getJob(job.id)).state).not.toBe("done");
    t.send({ type: "job.delta", jobId: job.id, seq: 2, text: "of it", offset: 4 });
    t.send({ ...doneFrame(job.id), chars: 9 });
    await expect.poll(async () => (await getJob(job.id)).state).toBe("done");
    expect((await getJob(job.id)).text).toBe("all of it");
  });
});
