import { describe, expect, it } from "vitest";
import { REGION_CENTRES } from "../../shared/geo/regions.js";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import {
  chat,
  getJob,
  inJobRegion,
  knownAndNewTabs,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";

/**
 * Hedged first token (edge/region/hedging.ts): a request with a latency budget whose chosen tab
 * has never been timed also runs on the best known idle tab; the first tab to send a token keeps
 * the job, the other is cancelled, and the client sees one answer with the winner's usage.
 */
const tabs = useTabs();
/** A prompt long enough that prefill, not the test machine's jitter, sets the estimates. */
const PROMPT = { messages: [{ role: "user", content: "word ".repeat(80) }] };
const BUDGET = { ...PROMPT, stream: true, tabgrid: { latency_budget_ms: 60_000 } };

const FROM_SYDNEY = { "x-tabgrid-location": `${REGION_CENTRES.oc.lat},${REGION_CENTRES.oc.lon}` };

const knownAndNew = (model: string) => knownAndNewTabs(tabs, model, PROMPT.messages[0]!.content);

// Each test warms two tabs and races them through the Region: under a full CI run on 2 cores one
// took over vitest's default 5 s (07:58 UTC, 2026-12-01; 6 of 6 alone took well under it).
describe("a hedged first token", { timeout: 20_000 }, () => {
  it("goes to the hedge tab when it answers first: one answer, its usage, the other tab cancelled", async () => {
    const { known, fresh } = await knownAndNew("hedge-a");
    const res = chat("hedge-a", BUDGET);
    const first = await fresh.nextJob();
    fresh.accept(first);
    const hedge = await known.nextJob();
    expect(hedge.id).toBe(first.id);
    known.serve(hedge, ["fast ", "answer"], { prompt_tokens: 5, completion_tokens: 2 });
    expect((await fresh.next("job.cancel")).jobId).toBe(first.id);
    fresh.delta(first, 0, "slow answer"); // too late: not the client's
    fresh.done(first, "abort");
    expect(await streamText(await res)).toEqual({ text: "fast answer", done: true });
    const view = await getJob(first.id);
    expect(view.usage).toEqual({ prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
    expect(view.attempts).toBe(2); // the job moved to the hedge tab, as a failover would
  });

  it("stays on the chosen tab when it answers first, and the hedge is cancelled", async () => {
    const { known, fresh } = await knownAndNew("hedge-b");
    const res = chat("hedge-b", BUDGET);
    const first = await fresh.nextJob();
    const hedge = await known.nextJob();
    expect(hedge.id).toBe(first.id);
    known.accept(hedge);
    fresh.serve(first, ["chosen"], { prompt_tokens: 5, completion_tokens: 1 });
    expect((await known.next("job.cancel")).jobId).toBe(first.id);
    known.done(hedge, "abort");
    expect(await streamText(await res)).toEqual({ text: "chosen", done: true });
    const view = await getJob(first.id);
    expect(view.attempts).toBe(1);
    expect(view.usage).toEqual({ prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 });
  });

  it("lets a new tab that lost run on to its own first token (which times it) before cancelling it", async () => {
    const { known, fresh } = await knownAndNew("hedge-d");
    const res = await chat("hedge-d", BUDGET);
    const first = await fresh.nextJob();
    fresh.accept(first);
    const hedge = await known.nextJob();
    known.accept(hedge);
    known.delta(hedge, 0, "fast ");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = "";
    // The client has the hedge's first delta: the race is decided.
    while (!seen.includes("fast ")) seen += decoder.decode((await reader.read()).value);
    // The new tab lost, but is cancelled only once its own first delta has timed it.
    fresh.delta(first, 0, "late");
    expect(await fresh.next("job.cancel")).toMatchObject({
      jobId: first.id,
      reason: "timed after losing the race",
    });
    fresh.done(first, "abort");
    known.delta(hedge, 1, "answer");
    known.done(hedge, "stop", { prompt_tokens: 5, completion_tokens: 2 });
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      seen += decoder.decode(chunk.value);
    }
    expect(seen).toContain("answer");
    expect(seen).not.toContain("late"); // one answer: the winner's
    expect((await getJob(first.id)).usage).toEqual({
      prompt_tokens: 5,
      completion_tokens: 2,
      total_tokens: 7,
    });
  });

  it("is not started without a latency budget", async () => {
    const { known, fresh } = await knownAndNew("hedge-c");
    const res = chat("hedge-c", { ...PROMPT, stream: true });
    const first = await fresh.nextJob();
    fresh.serve(first, ["alone"]);
    expect(await streamText(await res)).toEqual({ text: "alone", done: true });
    // The known tab was never sent this job (its warm-up job was taken off the list already).
    expect(known.received.filter((m) => m.type === "job.assign")).toHaveLength(0);
  });

  it("keeps a job queued behind the hedge tab while it races: its lease is renewed, no failure", async () => {
    // In Sydney's region, whose fleet no other test here has timed (what a new tab is believed to
    // be, and so whether a hedge is worth it, follows the tabs timed there: speed-tracker.ts).
    const { known, fresh } = await knownAndNewTabs(tabs, "hedge-q", PROMPT.messages[0]!.content, {
      loc: REGION_CENTRES.oc,
      headers: FROM_SYDNEY,
      protocol: QUEUE_SINCE_PROTOCOL, // the known tab may hold a job queued behind its hedge
    });
    const oneRes = chat("hedge-q", BUDGET, FROM_SYDNEY);
    const first = await fresh.nextJob();
    fresh.accept(first);
    const race = await known.next("job.assign");
    expect(race).toMatchObject({ job: { id: first.id }, attempt: 1 });
    const hedge = race.job;
    known.accept(hedge);
    const twoRes = chat("hedge-q", { stream: true }, FROM_SYDNEY);
    const two = await known.next("job.assign");
    expect(two.queued).toBe(true);
    // Its lease comes due now, while the known tab still races the job ahead as its hedge.
    await inJobRegion(two.job.id, (p) => p.machine.onLeaseDue(two.job.id));
    // The chosen tab answers first: the hedge is cancelled — the first cancel the known tab gets.
    fresh.delta(first, 0, "chosen");
    expect((await known.next("job.cancel")).jobId).toBe(first.id);
    known.done(hedge, "abort");
    known.serve(two.job, ["second"]);
    expect(await streamText(await twoRes)).toEqual({ text: "second", done: true });
    fresh.done(first, "stop");
    expect(await streamText(await oneRes)).toEqual({ text: "chosen", done: true });
    expect((await getJob(two.job.id)).attempts).toBe(1);
  });
});
