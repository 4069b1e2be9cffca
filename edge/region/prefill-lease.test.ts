import { describe, expect, it } from "vitest";
import { chat, getJob, post, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

const tabs = useTabs();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The edge project runs with LEASE_MS=1500 and PREFILL_UNSEEN_TPS=20 (vitest.config.ts): a
 * first token later than the lease is a slow prefill, not a dead tab.
 */
describe("leases that know prefill", () => {
  it("a tab reporting progress through a first token later than the lease keeps its job", async () => {
    const slow = await tabs.tab(["pl-progress"]);
    const resP = chat("pl-progress", { stream: true });
    const job = await slow.nextJob();
    const spare = await tabs.tab(["pl-progress"]);
    let moved = false;
    void spare.next("job.assign").then(() => (moved = true));
    slow.accept(job);
    // Prefill for 4 s (more than twice the lease and far beyond "hi" at 20 tokens/s), reporting
    // progress every 400 ms as a protocol-2 tab does every half status interval.
    for (let t = 0; t < 4000; t += 400) {
      await sleep(400);
      slow.send({ type: "job.progress", jobId: job.id, phase: "prefill" });
    }
    slow.serve(job, ["first ", "token"]);
    expect(await streamText(await resP)).toEqual({ text: "first token", done: true });
    expect(moved).toBe(false);
    expect(await getJob(job.id)).toMatchObject({ state: "done", attempts: 1, error: null });
  }, 20_000);

  it("a tab that sends no progress gets the prefill expected for its prompt", async () => {
    const old = await tabs.tab(["pl-expected"]);
    // ~160 characters ≈ 40 tokens: 2 s at the default 20 tokens/s, so the lease runs 3.5 s.
    const resP = post("/chat/completions", {
      model: "pl-expected",
      stream: true,
      messages: [{ role: "user", content: "x".repeat(160) }],
    });
    const job = await old.nextJob();
    const spare = await tabs.tab(["pl-expected"]);
    let moved = false;
    void spare.next("job.assign").then(() => (moved = true));
    old.accept(job);
    await sleep(2500); // silent past LEASE_MS, within the expected prefill
    old.serve(job, ["late"]);
    expect(await streamText(await resP)).toEqual({ text: "late", done: true });
    expect(moved).toBe(false);
  }, 20_000);

  it("a tab silent past its expected prefill loses the job, but not before", async () => {
    const stuck = await tabs.tab(["pl-stuck"]);
    const resP = post("/chat/completions", {
      model: "pl-stuck",
      stream: true,
      messages: [{ role: "user", content: "x".repeat(160) }],
    });
    const job = await stuck.nextJob();
    const rescuer = await tabs.tab(["pl-stuck"]);
    stuck.accept(job);
    const acceptedAt = Date.now();
    const moved = await rescuer.next("job.assign");
    expect(Date.now() - acceptedAt).toBeGreaterThanOrEqual(3000);
    expect((await stuck.next("job.cancel")).jobId).toBe(job.id);
    rescuer.serve(moved.job, ["rescued"]);
    expect(await streamText(await resP)).toEqual({ text: "rescued", done: true });
  }, 20_000);
});
