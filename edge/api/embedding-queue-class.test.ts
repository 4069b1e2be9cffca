import { describe, expect, it, vi } from "vitest";
import { encodeVector } from "../../shared/protocol/embedding-vectors.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { embeddingOf } from "../../test/support/deterministic-engine.js";
import { testKey } from "../../test/workerd/credit-helpers.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { chat, post, regionCounts, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * An embedding request waits in the queue in the same class as a chat request from the same
 * caller (credits/tiers.ts `baseQueueClass`): a key's base tier, or the keyless tier after it.
 * It used to take the paid classes (interactive for a key, batch without one), ahead of every
 * keyed chat request and of keys that paid for their place.
 */

const tabs = useTabs();
/** WebLLM's prebuilt snowflake-arctic-embed-s: 384 values per vector. */
const EMBED = "snowflake-arctic-embed-s-q0f32-MLC-b4";

function answer(tab: ScriptedTab, job: JobSpec) {
  if (job.input.kind !== "embedding") {
    tab.serve(job, ["ok"]);
    return;
  }
  tab.accept(job);
  const vectors = job.input.inputs.map((s) => encodeVector(embeddingOf(s, 384)));
  tab.send({ type: "job.vectors", jobId: job.id, index: 0, vectors });
  tab.done(job, "stop", { completion_tokens: 0 });
}

/**
 * With the only tab busy, `first` then `second` wait; the tab then frees up and serves what
 * comes. Returns the kinds of the waiting jobs in the order the tab got them.
 */
async function servedOrder(
  model: string,
  first: () => Promise<Response>,
  second: () => Promise<Response>,
): Promise<string[]> {
  const tab = await tabs.tab([model, EMBED]);
  const busy = chat(model);
  const running = await tab.nextJob();
  tab.accept(running);
  const a = first();
  await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(1));
  const b = second();
  await vi.waitFor(async () => expect((await regionCounts()).queued).toBe(2));
  tab.delta(running, 0, "busy");
  tab.done(running, "stop");
  const order: string[] = [];
  for (let i = 0; i < 2; i++) {
    const job = await tab.nextJob();
    order.push(job.input.kind);
    answer(tab, job);
  }
  for (const r of [busy, a, b]) expect((await r).status).toBe(200);
  return order;
}

describe("embedding jobs' queue class", () => {
  it("a keyless embedding request does not go ahead of an earlier keyed chat request", async () => {
    const key = await testKey();
    const order = await servedOrder(
      "eq-keyless",
      () => chat("eq-keyless", {}, { authorization: `Bearer ${key.key}` }),
      () => post("/embeddings", { model: EMBED, input: "keyless, second in line" }),
    );
    expect(order).toEqual(["chat", "embedding"]);
  });

  it("a keyed embedding request waits behind an earlier keyed chat request (same class)", async () => {
    const key = await testKey();
    const auth = { authorization: `Bearer ${key.key}` };
    const order = await servedOrder(
      "eq-keyed",
      () => chat("eq-keyed", {}, auth),
      () => post("/embeddings", { model: EMBED, input: "keyed, second in line" }, auth),
    );
    expect(order).toEqual(["chat", "embedding"]);
  });
});
