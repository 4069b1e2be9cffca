import { describe, expect, it } from "vitest";
import { JobSpecSchema, type JobSpec } from "../../shared/protocol/job.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { chat, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * `seed` is any safe integer on the API, choice i of n gets seed + i, and a tab takes seeds
 * 0..2^53 − 1 (its protocol refuses more; WebLLM throws on a negative one). A valid request must
 * never give tabs a job they cannot run: they would ignore it (or fail it), its lease would run
 * out against them, and a few such requests would rest every honest tab.
 */
const tabs = useTabs();
const MAX = Number.MAX_SAFE_INTEGER;

/** Serve every job `t` gets with "ok", keeping each job as the tab parsed it. */
function serveAll(t: ScriptedTab, seen: JobSpec[], invalid: string[]): void {
  // The tab runtime (web/runtime/tab-socket.ts) ignores a frame its schema refuses.
  (t as unknown as { opts: { onInvalid?: (why: string) => void } }).opts.onInvalid = (why) =>
    invalid.push(why);
  void (async () => {
    for (;;) {
      const job = await t.nextJobOrClose();
      if (!job) return;
      seen.push(job);
      t.serve(job, ["ok"], { completion_tokens: 1 });
    }
  })();
}

describe("choice seeds stay within what a tab takes", () => {
  it("the largest seed with n = 2 is answered: the second choice's seed wraps to 0", async () => {
    const seen: JobSpec[] = [];
    const invalid: string[] = [];
    for (let i = 0; i < 2; i++) serveAll(await tabs.tab(["seed-wrap"]), seen, invalid);
    const res = await chat("seed-wrap", { n: 2, seed: MAX, max_tokens: 4 });
    const body = (await res.json()) as { choices?: unknown[] };
    expect({ status: res.status, choices: body.choices?.length, invalid }).toEqual({
      status: 200,
      choices: 2,
      invalid: [],
    });
    expect(seen.map((j) => j.sampling.seed).sort()).toEqual([0, MAX]);
  });

  it("a negative seed reaches the tab as seed + 2^53, a seed its engine can start from", async () => {
    const seen: JobSpec[] = [];
    const invalid: string[] = [];
    serveAll(await tabs.tab(["seed-negative"]), seen, invalid);
    const res = await chat("seed-negative", { n: 2, seed: -1, max_tokens: 4 });
    expect(res.status).toBe(200);
    expect(invalid).toEqual([]);
    expect(seen.map((j) => j.sampling.seed).sort()).toEqual([0, MAX]);
    for (const job of seen) expect(JobSpecSchema.safeParse(job).success).toBe(true);
  });

  it("repeating such a request does not rest the only tab (it still answers a plain one)", async () => {
    const t = await tabs.tab(["seed-rest"]);
    serveAll(t, [], []);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await chat("seed-rest", { n: 2, seed: MAX, max_tokens: 4 });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    const plain = await chat("seed-rest", { max_tokens: 4 });
    await plain.body?.cancel();
    expect({ statuses, plain: plain.status }).toEqual({
      statuses: [200, 200, 200, 200, 200, 200],
      plain: 200,
    });
  }, 60_000);
});
