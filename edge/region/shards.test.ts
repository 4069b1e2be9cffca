import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { forgetRoutingCache } from "../directory/directory-client.js";
import { chat, appEnv, jobToken, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  addressesOn,
  idleOn,
  sharded,
  tabFrom,
  tabsOn,
  untilRouting,
} from "../../test/workerd/shard-helpers.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { shardStub } from "./region-stub.js";
import { ShardRole } from "./shard-role.js";
import { shardSettings } from "./shard-config.js";
import type { ShardFigures } from "./shard-figures.js";

const { list } = useTabs();
const ORIGIN = "http://tabgrid.test";

describe("sharded regions", () => {
  it("spreads a hint's tabs over its shards by their address", async () => {
    await sharded(4);
    const ips = [0, 1, 2, 3].flatMap((k) => addressesOn(k, 4, 2, `spread${k}`));
    for (const ip of ips) await tabFrom(list, ip, ["shard-spread"]);
    expect(await Promise.all([0, 1, 2, 3].map(tabsOn))).toEqual([2, 2, 2, 2]);
    // Every shard reports itself; the hint's capacity is the sum.
    const v = await untilRouting((r) =>
      [0, 1, 2, 3].every((k) => (r.summaries[k ? `wnam/${k}` : "wnam"]?.nodes ?? 0) === 2),
    );
    expect(v.shards.wnam).toHaveLength(4);
    const models = (await (await SELF.fetch(`${ORIGIN}/v1/models`)).json()) as {
      data: Array<{ id: string }>;
    };
    expect(models.data.some((m) => m.id === "shard-spread")).toBe(true);
    const nodes = (await (await SELF.fetch(`${ORIGIN}/v1/nodes`)).json()) as {
      data: Array<{ models: string[]; region: string }>;
    };
    expect(nodes.data.filter((n) => n.models.includes("shard-spread"))).toHaveLength(8);
  });

  it("sends a request to an idle tab on another shard than the busy one", async () => {
    await sharded(2);
    const a = await tabFrom(list, addressesOn(0, 2, 1, "busy")[0]!, ["shard-p2c"]);
    const b = await tabFrom(list, addressesOn(1, 2, 1, "idle")[0]!, ["shard-p2c"]);
    const first = chat("shard-p2c", { stream: true });
    const [busy, other, job1] = await Promise.race([
      a.nextJob().then((j) => [a, b, j] as const),
      b.nextJob().then((j) => [b, a, j] as const),
    ]);
    busy.accept(job1);
    busy.delta(job1, 0, "busy");
    const busyShard = busy === a ? "wnam" : "wnam/1";
    await untilRouting((r) => idleOn(r, busyShard, "shard-p2c") === 0);
    forgetRoutingCache();
    const second = chat("shard-p2c", { stream: true });
    const job2 = await other.nextJob();
    other.serve(job2, ["idle ", "tab"]);
    const res2 = await second;
    expect(res2.headers.get("x-tabgrid-job-id")).toBe(job2.id);
    expect((await streamText(res2)).text).toBe("idle tab");
    // The two jobs live in different shards, and each id names its own.
    expect(job1.id.startsWith(busy === a ? "job_wnam_" : "job_wnam-1_")).toBe(true);
    expect(job2.id.startsWith(busy === a ? "job_wnam-1_" : "job_wnam_")).toBe(true);
    busy.done(job1, "stop");
    expect((await streamText(await first)).text).toBe("busy");
  });

  it("opens a request on another shard when the one routing chose has lost its tab", async () => {
    await sharded(2);
    const gone = await tabFrom(list, addressesOn(0, 2, 1, "gone")[0]!, ["shard-fail"]);
    const stays = await tabFrom(list, addressesOn(1, 2, 1, "stays")[0]!, ["shard-fail"]);
    await untilRouting(
      (r) => idleOn(r, "wnam", "shard-fail") + idleOn(r, "wnam/1", "shard-fail") === 2,
    );
    // This isolate now routes from a view where both shards have an idle tab…
    forgetRoutingCache();
    await chat("no-such-model-warms-the-cache");
    // …and shard 0's tab leaves before the request: whichever shard is tried first, the tab
    // that stays answers.
    gone.close();
    await gone.closed;
    const res = chat("shard-fail", { stream: true });
    const job = await stays.nextJob();
    expect(job.id.startsWith("job_wnam-1_")).toBe(true);
    stays.serve(job, ["still ", "served"]);
    expect((await streamText(await res)).text).toBe("still served");
  });

  it("reads, resumes and cancels a job of shard 1 through /v1/jobs/:id", async () => {
    await sharded(2);
    const t = await tabFrom(list, addressesOn(1, 2, 1, "jobs")[0]!, ["shard-jobs"]);
    const created = chat("shard-jobs", { stream: true });
    const job = await t.nextJob();
    expect(job.id).toMatch(/^job_wnam-1_[0-9a-f]{32}$/);
    t.accept(job);
    t.delta(job, 0, "part");
    const res = await created;
    const token = jobToken(res);
    const view = (await (
      await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}`, { headers: token })
    ).json()) as { id: string; state: string };
    expect(view.id).toBe(job.id);
    const resumed = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream?after=2`, {
      headers: token,
    });
    expect(resumed.status).toBe(200);
    const cancelled = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}`, {
      method: "DELETE",
      headers: token,
    });
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as { state: string }).state).toBe("cancelled");
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    // The resumed stream ends with the job, after the characters it skipped ("pa" + "rt").
    const resumedText = await streamText(resumed);
    expect(resumedText.text).toBe("rt");
    await streamText(res);
  });

  it("a split moves idle tabs at once and a busy tab only after its running job ends", async () => {
    // wnam as one shard; a split gives keys with bit 0 set to the new shard wnam/1.
    await sharded(1);
    const shard0 = shardStub(appEnv, { hint: "wnam", k: 0 });
    const before = await shard0.jobCounts();
    const [mover, idleMover] = addressesOn(1, 2, 2, "split");
    const [stayer] = addressesOn(0, 2, 1, "split");
    const busy = await tabFrom(list, mover!, ["shard-split-a"]);
    const idle = await tabFrom(list, idleMover!, ["shard-split-b"]);
    const stays = await tabFrom(list, stayer!, ["shard-split-b"]);
    const created = chat("shard-split-a", { stream: true });
    const job = await busy.nextJob();
    expect(job.id.startsWith("job_wnam_")).toBe(true);
    busy.accept(job);
    busy.delta(job, 0, "before ");

    const leaves = await shardStub(appEnv, { hint: "wnam", k: 0 }).splitShard();
    expect(leaves).toEqual([
      { k: 0, depth: 1 },
      { k: 1, depth: 1 },
    ]);
    expect((await idle.closed).code).toBe(CloseCode.Moved);
    expect(busy.ws.readyState).toBe(WebSocket.OPEN);
    busy.delta(job, 1, "and after the split");
    busy.done(job, "stop");
    expect(await streamText(await created)).toEqual({
      text: "before and after the split",
      done: true,
    });
    // Once its job ended the busy tab is moved too; the tab that belongs to shard 0 stays.
    expect((await busy.closed).code).toBe(CloseCode.Moved);
    expect(stays.ws.readyState).toBe(WebSocket.OPEN);
    const after = await shard0.jobCounts();
    expect(after.done ?? 0).toBe((before.done ?? 0) + 1);
    expect(after.failed ?? 0).toBe(before.failed ?? 0);

    // Reconnecting, the moved tabs land on the new shard, which serves them.
    forgetRoutingCache();
    const back = await tabFrom(list, mover!, ["shard-split-a"]);
    await tabFrom(list, idleMover!, ["shard-split-b"]);
    expect(await tabsOn(1)).toBe(2);
    expect(await tabsOn(0)).toBe(1);
    const again = chat("shard-split-a", { stream: true });
    const next = await back.nextJob();
    expect(next.id.startsWith("job_wnam-1_")).toBe(true);
    back.serve(next, ["served by ", "wnam/1"]);
    expect((await streamText(await again)).text).toBe("served by wnam/1");
  });

  it("a shard is hot at SHARD_SPLIT_STREAMS streams or SHARD_SPLIT_TABS tabs, once per cooldown", () => {
    const settings = shardSettings({ SHARD_SPLIT_STREAMS: "3", SHARD_SPLIT_TABS: "10" });
    expect(settings.cooldownMs).toBe(60_000);
    const role = new ShardRole(
      { hint: "wnam", k: 0 },
      settings,
      {} as DurableObjectStorage,
      () => {
        throw new Error("not called");
      },
      () => [],
      () => true,
      async () => undefined,
    );
    const figures = (streams: number, tabs: number): ShardFigures => ({
      streams,
      tabs,
      bestRttMs: {},
    });
    expect(role.hot(figures(2, 9), 100_000)).toBe(false);
    expect(role.hot(figures(3, 9), 100_000)).toBe(true);
    expect(role.hot(figures(0, 10), 100_000)).toBe(true);
    // "0" turns splitting off (wrangler.toml, for local development and tests).
    const off = shardSettings({ SHARD_SPLIT_STREAMS: "0" });
    expect([off.splitStreams, off.splitTabs]).toEqual([Infinity, Infinity]);
    // Defaults when unset, as documented in docs/scale.md.
    expect(shardSettings({})).toEqual({
      initialShards: 1,
      splitStreams: 12,
      splitTabs: 4000,
      cooldownMs: 60_000,
    });
  });
});
