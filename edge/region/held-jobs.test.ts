import { describe, expect, it } from "vitest";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import type { CoordinatorMessage } from "../../shared/protocol/node-messages.js";
import { COUNTED_CONTINUATION_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * A tab keeps a job only by writing it (edge/region/job-leases.ts): a repeated `job.accept` does
 * not restart its prefill allowance, `job.progress` counts only before the first token, and an
 * attempt has a deadline of one lease per token `max_tokens` allows. The edge project runs with
 * LEASE_MS=1500 (vitest.config.ts).
 */
const tabs = useTabs();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Assign = Extract<CoordinatorMessage, { type: "job.assign" }>;

/**
 * Send `frame` every `everyMs` until `spare` is given the job (at most `times` times); returns the
 * spare's job.assign, or null if it never came.
 */
async function holdUntilMoved(
  spare: ScriptedTab,
  frame: (i: number) => void,
  everyMs: number,
  times: number,
): Promise<Assign | null> {
  let moved: Assign | null = null;
  void spare.next("job.assign").then((a) => (moved = a));
  for (let i = 0; i < times && moved === null; i++) {
    frame(i);
    await sleep(everyMs);
  }
  return moved;
}

describe("a tab holds a job only by writing it", () => {
  it("a repeated job.accept restarts no prefill allowance: the job moves after one", async () => {
    const t = await tabs.tab(["hj-accept"]);
    const res = chat("hj-accept", { stream: true });
    const job = await t.nextJob();
    const spare = await tabs.tab(["hj-accept"]);
    // Six leases' worth of accepts, one every 500 ms, and not a token.
    const moved = await holdUntilMoved(spare, () => t.accept(job), 500, 18);
    expect(moved?.job.id).toBe(job.id);
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    spare.serve(moved!.job, ["rescued"]);
    expect(await streamText(await res)).toEqual({ text: "rescued", done: true });
  }, 20_000);

  it("job.progress after the first token keeps no lease", async () => {
    const t = await tabs.tab(["hj-progress"]);
    const res = chat("hj-progress", { stream: true });
    const job = await t.nextJob();
    const spare = await tabs.tab(["hj-progress"]);
    t.accept(job);
    t.delta(job, 0, "first ");
    const progress = () => t.send({ type: "job.progress", jobId: job.id, phase: "prefill" });
    const moved = await holdUntilMoved(spare, progress, 500, 18);
    expect(moved?.continueFrom).toBe("first ");
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    spare.serve(moved!.job, ["rest"]);
    expect(await streamText(await res)).toEqual({ text: "first rest", done: true });
  }, 20_000);

  it("a tab writing a character per lease loses the job at its deadline, one lease per token", async () => {
    const t = await tabs.tab(["hj-dribble"]);
    // max_tokens 2: the attempt's deadline is (2 + 1) × 1.5 s after its first token.
    const res = chat("hj-dribble", { stream: true, max_tokens: 2 });
    const job = await t.nextJob();
    // The answer's bytes may reach max_tokens: only a tab that counts tokens may continue it.
    const spare = await tabs.tab(["hj-dribble"], { protocol: COUNTED_CONTINUATION_SINCE_PROTOCOL });
    t.accept(job);
    t.delta(job, 0, "a");
    const firstAt = Date.now();
    // One character every 700 ms keeps the lease (1.5 s) alive; 128 bytes (the byte cap of 2
    // tokens is 256) would take 90 s.
    const moved = await holdUntilMoved(spare, (i) => t.delta(job, i + 1, "b"), 700, 20);
    expect(moved).not.toBeNull();
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(4500);
    expect(moved!.continueFrom).toMatch(/^ab+$/);
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    spare.accept(moved!.job);
    spare.delta(moved!.job, 0, ".");
    spare.done(moved!.job, "stop", { completion_tokens: 1 }, 1);
    const out = await streamText(await res);
    expect(out.text).toBe(`${moved!.continueFrom}.`);
  }, 25_000);
});
