import { describe, expect, it } from "vitest";
import { REGION_CENTRES } from "../../shared/geo/regions.js";
import {
  chat,
  inJobRegion,
  knownAndNewTabs,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";

/**
 * A `job.delta` with no text (a tab that numbers its deltas may send one) is no sign of an answer:
 * it takes its `seq` and nothing more — no first token (time to first token, the credit's latency
 * tier, what the region learns of the tab's speed), no lease, no hedge race decided. The edge
 * project runs with LEASE_MS=1500 (vitest.config.ts).
 */
const tabs = useTabs();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The next `seq` the job's Region object expects from its tab, once it has `n`. */
function seqTaken(jobId: string, tabId: string, n: number): Promise<void> {
  return expect
    .poll(() => inJobRegion(jobId, (p) => p.jobs.position(jobId, tabId)?.nextSeq))
    .toBe(n);
}

describe("an empty delta", () => {
  it("takes its seq, and the text around it goes on", async () => {
    const t = await tabs.tab(["ed-seq"]);
    const res = chat("ed-seq", { stream: true });
    const job = await t.nextJob();
    t.accept(job);
    t.delta(job, 0, "a");
    t.delta(job, 1, "");
    t.delta(job, 2, "b");
    t.done(job, "stop");
    expect(await streamText(await res)).toEqual({ text: "ab", done: true });
  });

  it("is no first token: time to first token and the credit's tier count from the first text", async () => {
    const t = await tabs.tab(["ed-first"]);
    const res = chat("ed-first", { stream: true, tabgrid: { latency_budget_ms: 1500 } });
    const openedAt = Date.now();
    const job = await t.nextJob();
    t.accept(job);
    t.delta(job, 0, "");
    await seqTaken(job.id, t.nodeId, 1);
    // The first text comes after the budget: the job earns the batch weight, not the interactive.
    // Till then the tab says it is prefilling (an empty delta keeps no lease).
    while (Date.now() < openedAt + 1600) {
      t.send({ type: "job.progress", jobId: job.id, phase: "prefill" });
      await sleep(400);
    }
    const textSentAt = Date.now();
    t.delta(job, 1, "late answer");
    t.done(job, "stop", { completion_tokens: 2 });
    const credit = await t.next("job.credit");
    expect(await streamText(await res)).toEqual({ text: "late answer", done: true });
    const firstTokenAt = await inJobRegion(job.id, (p) => p.jobs.get(job.id)?.first_token_at);
    expect(firstTokenAt).toBeGreaterThanOrEqual(textSentAt);
    expect(credit.credit).toBe(2); // 2 tokens × the batch weight (1)
  }, 10_000); // 1.6 s of deliberate waiting, on a shared machine

  it("keeps no lease: a tab sending only empty deltas loses the job", async () => {
    const t = await tabs.tab(["ed-lease"]);
    const res = chat("ed-lease", { stream: true });
    const job = await t.nextJob();
    const spare = await tabs.tab(["ed-lease"]);
    let moved = false;
    const assigned = spare.next("job.assign").then((a) => ((moved = true), a));
    t.accept(job);
    // Twice a lease's worth of empty deltas, one every 400 ms; the lease is 1.5 s.
    for (let seq = 0; seq < 8 && !moved; seq++) {
      t.delta(job, seq, "");
      await sleep(400);
    }
    expect(moved).toBe(true);
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    spare.serve((await assigned).job, ["rescued"]);
    expect(await streamText(await res)).toEqual({ text: "rescued", done: true });
  }, 15_000);

  it("from the chosen tab does not end a hedge race: the hedge's first text wins it", async () => {
    // In São Paulo's region, whose fleet the tests above did not time (a hedge is started only
    // while the tabs timed there make a new tab's speed uncertain: hedging.ts).
    const loc = REGION_CENTRES.sam;
    const from = { "x-tabgrid-location": `${loc.lat},${loc.lon}` };
    const prompt = "word ".repeat(80);
    const { known, fresh } = await knownAndNewTabs(tabs, "ed-hedge", prompt, {
      loc,
      headers: from,
    });
    const body = { messages: [{ role: "user", content: prompt }], stream: true };
    const res = chat("ed-hedge", { ...body, tabgrid: { latency_budget_ms: 60_000 } }, from);
    const first = await fresh.nextJob();
    fresh.accept(first);
    const race = await known.next("job.assign");
    expect(race).toMatchObject({ job: { id: first.id }, attempt: 1 });
    const hedge = race.job;
    fresh.delta(first, 0, "");
    await seqTaken(first.id, fresh.nodeId, 1);
    known.accept(hedge);
    known.delta(hedge, 0, "fast ");
    // The hedge won: the job is its own now, with its text.
    await expect.poll(() => inJobRegion(first.id, (p) => p.jobs.get(first.id)?.text)).toBe("fast ");
    // The chosen tab, never timed, runs on to its first text, which times it; then it is cancelled.
    fresh.delta(first, 1, "slow");
    expect(await fresh.next("job.cancel")).toMatchObject({ reason: "timed after losing the race" });
    fresh.done(first, "abort");
    known.delta(hedge, 1, "answer");
    known.done(hedge, "stop");
    expect(await streamText(await res)).toEqual({ text: "fast answer", done: true });
    expect(known.received.filter((m) => m.type === "job.cancel")).toEqual([]);
  });
});
