import { describe, expect, it } from "vitest";
import { forgetRoutingCache } from "../directory/directory-client.js";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  addressesOn,
  idleOn,
  sharded,
  tabFrom,
  untilRouting,
  type Routing,
} from "../../test/workerd/shard-helpers.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import type { JobSpec } from "../../shared/protocol/job.js";

/**
 * Conversation affinity across the shards of one hint: each shard reports the (truncated)
 * conversation keys its tabs hold, and the Worker sends a follow-up turn first to the shard
 * whose tab holds its history (region-client/conversation-shards.ts).
 */
const { list } = useTabs();
const MODEL = "conv-shard";
const QUESTION = "Tell me about tides. ".repeat(50);
const ANSWER = "The moon pulls the sea.";
const FOLLOW_UP = [
  { role: "user", content: QUESTION },
  { role: "assistant", content: ANSWER },
  { role: "user", content: "And the sun?" },
];

const reported = (r: Routing, name: string) => r.summaries[name]?.shard?.conversations ?? [];

/**
 * The first turn served by a tab of shard 1 that is slow to accept (its measured round trip,
 * ~150 ms, is worse than the 100 ms assumed for shard 0's unmeasured tabs), then two idle tabs
 * on shard 0: routing without affinity always puts shard 0 first (best round trip), whatever
 * its draw.
 */
async function firstTurnOnShard1(
  tag: string,
): Promise<{ holder: ScriptedTab; others: ScriptedTab[] }> {
  await sharded(2);
  const holder = await tabFrom(list, addressesOn(1, 2, 1, `${tag}-b`)[0]!, [MODEL]);
  const res = chat(MODEL, { stream: true, messages: [{ role: "user", content: QUESTION }] });
  const first = await holder.nextJob();
  expect(first.id.startsWith("job_wnam-1_")).toBe(true);
  // A slow round trip is the condition under test, not a wait for an event.
  await new Promise((r) => setTimeout(r, 150));
  holder.serve(first, [ANSWER]);
  expect((await streamText(await res)).text).toBe(ANSWER);
  const others: ScriptedTab[] = [];
  for (const ip of addressesOn(0, 2, 2, `${tag}-a`)) others.push(await tabFrom(list, ip, [MODEL]));
  const view = await untilRouting(
    (r) =>
      idleOn(r, "wnam", MODEL) === 2 &&
      idleOn(r, "wnam/1", MODEL) === 1 &&
      reported(r, "wnam/1").length > 0,
  );
  // The precondition that makes the old routing pick shard 0 every time.
  expect(view.summaries["wnam/1"]?.shard?.bestRttMs[MODEL]).toBeGreaterThan(
    view.summaries["wnam"]?.shard?.bestRttMs[MODEL] ?? Infinity,
  );
  return { holder, others };
}

/** Which of the tabs gets the next job (the others' waits end when they close). */
function whoGets(tabs: ScriptedTab[]): Promise<{ tab: ScriptedTab; job: JobSpec }> {
  return Promise.race(
    tabs.map((tab) =>
      tab.nextJobOrClose().then((job) => (job ? { tab, job } : new Promise<never>(() => {}))),
    ),
  );
}

describe("conversation affinity across shards", () => {
  it("sends a follow-up turn to the shard whose tab holds the conversation", async () => {
    const { holder, others } = await firstTurnOnShard1("cs-aff");
    const view = await untilRouting(() => true);
    expect(reported(view, "wnam/1")).toHaveLength(1);
    expect(reported(view, "wnam/1")[0]).toMatch(/^[0-9a-f]{12}$/);
    expect(reported(view, "wnam")).toEqual([]);
    forgetRoutingCache();

    const res = chat(MODEL, { stream: true, messages: FOLLOW_UP });
    const { tab, job } = await whoGets([holder, ...others]);
    expect(tab).toBe(holder);
    expect(job.id.startsWith("job_wnam-1_")).toBe(true);
    // The tab is handed its own conversation continued: its engine prefills only the new message.
    expect(job.input.kind === "chat" && job.input.messages).toEqual(FOLLOW_UP);
    holder.serve(job, ["It pulls too, less."]);
    expect((await streamText(await res)).text).toBe("It pulls too, less.");
  });

  it("sends a follow-up whose holder left the usual way, even by a view that still lists it", async () => {
    const { holder, others } = await firstTurnOnShard1("cs-gone");
    // This isolate routes from a view where shard 1 still holds the conversation…
    forgetRoutingCache();
    await chat("no-such-model-warms-the-cache");
    // …and the holding tab leaves before the follow-up comes.
    holder.close();
    await holder.closed;
    const res = chat(MODEL, { stream: true, messages: FOLLOW_UP });
    const { tab, job } = await whoGets(others);
    expect(job.id.startsWith("job_wnam_")).toBe(true);
    tab.serve(job, ["From scratch."]);
    expect((await streamText(await res)).text).toBe("From scratch.");
    // Shard 1 stops reporting a conversation nobody holds.
    const after = await untilRouting((r) => reported(r, "wnam/1").length === 0);
    expect(reported(after, "wnam/1")).toEqual([]);
  });
});
