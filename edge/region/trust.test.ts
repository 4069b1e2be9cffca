import { SELF, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import type { HelloGpu } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { ScriptedTab, identityProof, newKeyPair } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, getJob, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";
import type { RegionParts } from "./region-parts.js";
import type { TabListing } from "./region-views.js";
import { MAX_TOKEN_BYTES } from "./usage-bounds.js";

/**
 * Trust no tab (issue 10): each lie a tab can tell the coordinator, told by a scripted tab over the
 * real protocol, and what the coordinator makes of it.
 */

const tabs = useTabs();

/** A tab whose hello carries a GPU report (the scripted tab's default hello has none). */
async function tabWithGpu(
  models: string[],
  gpu: HelloGpu,
  keys?: CryptoKeyPair,
): Promise<ScriptedTab> {
  const t = await ScriptedTab.open();
  tabs.list.push(t);
  const challenge = await t.next("challenge");
  t.send({
    type: "hello",
    protocol: PROTOCOL_VERSION,
    ...(keys ? await identityProof(keys, challenge.nonce) : {}),
    adapter: {
      vendor: "nvidia",
      architecture: "ampere",
      description: "scripted",
      shaderF16: true,
      maxBufferSize: 268435456,
      maxStorageBufferBindingSize: 134217728,
    },
    models,
    state: "idle",
    agent: "scripted-tab/1",
    gpu,
  });
  t.nodeId = (await t.next("welcome")).nodeId;
  return t;
}

/** Answer every job the tab gets with `answer` until its socket closes; counts the jobs. */
function serveAll(t: ScriptedTab, answer: (job: { id: string }, n: number) => void) {
  const stats = { jobs: 0 };
  void (async () => {
    for (;;) {
      const job = await t.nextJobOrClose();
      // A job delivered as the test closes the socket is not answered (send after close throws).
      if (!job || t.isClosed) return;
      answer(job, stats.jobs);
      stats.jobs += 1;
    }
  })();
  return stats;
}

async function listing(): Promise<TabListing[]> {
  const body = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
    data: TabListing[];
  };
  return body.data;
}

async function listed(model: string): Promise<TabListing[]> {
  return (await listing()).filter((n) => n.models.includes(model));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("the coordinator owns every number", () => {
  it("usage a tab inflates is clamped to what the coordinator observed; credit follows it", async () => {
    const t = await tabs.tab(["tr-usage"]);
    const resP = chat("tr-usage", { max_tokens: 50 });
    const job = await t.nextJob();
    t.serve(job, ["hello ", "world"], { prompt_tokens: 9e12, completion_tokens: 9e12 });
    const body = ChatCompletionSchema.parse(await (await resP).json());
    expect(body.choices[0]?.message.content).toBe("hello world");
    // 11 bytes of answer: at most 12 tokens (one per byte, plus the stop token).
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(12);
    expect(body.usage.completion_tokens).toBeGreaterThanOrEqual(1);
    // The prompt was "hi" plus a chat template: nowhere near 9·10^12.
    expect(body.usage.prompt_tokens).toBeLessThan(100);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect((await t.next("job.credit")).credit).toBeLessThanOrEqual(12);
    const view = await getJob(job.id);
    expect(view.usage?.completion_tokens).toBe(body.usage.completion_tokens);
    const [node] = await listed("tr-usage");
    expect(node?.trust.faults).toBeGreaterThanOrEqual(1);
  });

  it("an 8 MB answer for max_tokens 16 is cut off: never sent or stored, ends with length, a fault", async () => {
    const t = await tabs.tab(["tr-long"]);
    const resP = chat("tr-long", { max_tokens: 16 });
    const job = await t.nextJob();
    t.send({ type: "job.accept", jobId: job.id });
    const piece = "x".repeat(64 * 1024);
    for (let seq = 0; seq < 128; seq++)
      t.send({ type: "job.delta", jobId: job.id, seq, text: piece });
    t.done(job, "stop", { completion_tokens: 2_000_000 });
    const res = await resP;
    expect(res.status).toBe(200);
    const body = ChatCompletionSchema.parse(await res.json());
    const content = body.choices[0]?.message.content ?? "";
    expect(content.length).toBeGreaterThan(0);
    expect(content.length).toBeLessThanOrEqual(16 * MAX_TOKEN_BYTES);
    expect(body.choices[0]?.finish_reason).toBe("length");
    expect(body.usage.completion_tokens).toBe(16);
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    const view = await getJob(job.id);
    expect(view.state).toBe("done");
    expect(view.text.length).toBeLessThanOrEqual(16 * MAX_TOKEN_BYTES);
    const [node] = await listed("tr-long");
    expect(node?.trust.faults).toBeGreaterThanOrEqual(1);
  });

  it("a streamed overlong answer stops at the bound too", async () => {
    const t = await tabs.tab(["tr-long-sse"]);
    const resP = chat("tr-long-sse", { max_tokens: 4, stream: true });
    const job = await t.nextJob();
    t.send({ type: "job.accept", jobId: job.id });
    for (let seq = 0; seq < 8; seq++) {
      t.send({ type: "job.delta", jobId: job.id, seq, text: "€".repeat(200) });
    }
    const text = await (await resP).text();
    const content = text
      .split("\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => JSON.parse(l.slice(6)) as { choices: Array<{ delta: { content?: string } }> })
      .map((c) => c.choices[0]?.delta.content ?? "")
      .join("");
    // 4 tokens of at most 128 bytes: 512 bytes, 170 three-byte characters.
    expect(new TextEncoder().encode(content).byteLength).toBeLessThanOrEqual(4 * MAX_TOKEN_BYTES);
    expect(content.length).toBe(Math.floor((4 * MAX_TOKEN_BYTES) / 3));
    expect(text).toContain('"finish_reason":"length"');
  });
});

describe("tab errors are tab faults", () => {
  // bad_request counts against its tab only once a trusted tab answers the request
  // (tab-error-words.test.ts): the honest tab here is on probation.
  it.each([
    ["cancelled", "error"],
    ["no_capacity", "error"],
    ["over_budget", "error"],
    ["engine_error", "error"],
    ["abort", "done"],
  ] as const)(
    "a tab's %s moves the job to another tab and counts against it",
    async (code, how) => {
      const model = `tr-each-${code}`;
      const liar = await tabs.tab([model]);
      const resP = chat(model);
      const job = await liar.nextJob();
      const honest = await tabs.tab([model]);
      if (how === "done") {
        liar.send({ type: "job.accept", jobId: job.id });
        liar.done(job, "abort");
      } else {
        liar.send({
          type: "job.error",
          jobId: job.id,
          error: { code, message: "your request is wrong" },
        });
      }
      honest.serve(await honest.nextJob(), ["ok"]);
      const res = await resP;
      expect(res.status).toBe(200);
      expect(ChatCompletionSchema.parse(await res.json()).choices[0]?.message.content).toBe("ok");
      const nodes = await listed(model);
      expect(nodes.map((n) => n.trust.faults).sort()).toEqual([0, 1]);
    },
  );

  it("a tab answering every job with an error, ranked first by its claim, fails no client while an honest tab is idle", async () => {
    const model = "tr-err";
    const liar = await tabWithGpu([model], {
      class: "high",
      profile: null,
      benchmark: { matmulGflops: 20_000, bandwidthGBs: 900, durationMs: 50 },
    });
    const honest = await tabs.tab([model]);
    // Its bad_request lies count only on a trusted tab's answer (the honest tab is on probation).
    let invalid = 0;
    const lies = serveAll(liar, (job, n) => {
      const kind = n % 4;
      if (kind === 0) invalid += 1;
      if (kind === 3) {
        liar.send({ type: "job.accept", jobId: job.id });
        liar.done(job as never, "abort");
        return;
      }
      const code = (["bad_request", "no_capacity", "cancelled"] as const)[kind];
      liar.send({
        type: "job.error",
        jobId: job.id,
        error: { code, message: "your request is wrong" },
      });
    });
    const served = serveAll(honest, (job) => honest.serve(job as never, ["ok"]));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await chat(model);
      statuses.push(res.status);
      if (res.status === 200) {
        expect(ChatCompletionSchema.parse(await res.json()).choices[0]?.message.content).toBe("ok");
      }
    }
    expect(statuses).toEqual(new Array(20).fill(200));
    expect(served.jobs).toBe(20);
    const nodes = await listed(model);
    expect(Math.max(...nodes.map((n) => n.trust.faults))).toBe(lies.jobs - invalid);
  });

  it("one tab's bad_request alone does not reach the client", async () => {
    const first = await tabs.tab(["tr-bad"]);
    const resP = chat("tr-bad");
    const job = await first.nextJob();
    first.send({
      type: "job.error",
      jobId: job.id,
      error: { code: "bad_request", message: "too long" },
    });
    // No second tab: the client is not told its request is bad on one tab's word. (When a second
    // tab's word counts: tab-error-words.test.ts.)
    const res = await resP;
    expect(res.status).not.toBe(400);
    expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).not.toBe("bad_request");
  });
});

describe("credit belongs to the identity", () => {
  it("a tab's credit total survives its identity reconnecting", async () => {
    const keys = await newKeyPair();
    const first = await tabs.tab(["tr-credit"], { keys });
    const r1 = chat("tr-credit");
    const j1 = await first.nextJob();
    first.serve(j1, ["abcdef"], { completion_tokens: 3 });
    expect((await r1).status).toBe(200);
    expect((await first.next("job.credit")).credit).toBe(3);
    expect((await listed("tr-credit"))[0]?.credits).toBe(3);
    first.close();
    await first.closed;
    const again = await tabs.tab(["tr-credit"], { keys });
    expect(again.nodeId).toBe(first.nodeId);
    const r2 = chat("tr-credit");
    const j2 = await again.nextJob();
    again.serve(j2, ["ghijkl"], { completion_tokens: 4 });
    expect((await r2).status).toBe(200);
    expect((await again.next("job.credit")).credit).toBe(4);
    const nodes = await listed("tr-credit");
    expect(nodes).toHaveLength(1);
    expect(nodes[0]?.credits).toBe(7);
    expect(nodes[0]?.trust).toMatchObject({ state: "probation", jobs: 2, faults: 0 });
  });
});

describe("tab socket bounds", () => {
  it("a socket flooding status frames is closed with RateLimited; other clients are served", async () => {
    // From its own address: after its 4009 that address may not connect for a minute.
    const flood = await ScriptedTab.open("", { "cf-connecting-ip": "198.51.100.71" });
    tabs.list.push(flood);
    await flood.handshake({ models: ["tr-flood"] });
    const honest = await tabs.tab(["tr-flood-ok"]);
    for (let i = 0; i < 500; i++)
      flood.send({ type: "status", state: "idle", models: ["tr-flood"] });
    const closed = await Promise.race([flood.closed, sleep(3000).then(() => null)]);
    expect(closed?.code).toBe(CloseCode.RateLimited);
    const resP = chat("tr-flood-ok");
    honest.serve(await honest.nextJob(), ["fine"]);
    expect((await resP).status).toBe(200);
  });

  it("a socket that never says hello is closed after the deadline", async () => {
    const silent = await ScriptedTab.open();
    tabs.list.push(silent);
    // HELLO_DEADLINE_MS is 1 s in the test configuration.
    const closed = await Promise.race([silent.closed, sleep(4000).then(() => null)]);
    expect(closed?.code).toBe(CloseCode.HelloTimeout);
  });

  it(
    "sockets that never say hello do not keep their address's slots",
    { timeout: 30_000 },
    async () => {
      const open = () =>
        SELF.fetch("http://tabgrid.test/v1/nodes/connect", {
          headers: { upgrade: "websocket", "cf-connecting-ip": "198.51.100.7" },
        });
      const sockets: WebSocket[] = [];
      // MAX_NODES_PER_IP is 40 in the test configuration.
      for (let i = 0; i < 40; i++) {
        const r = await open();
        if (r.status !== 101) break;
        r.webSocket!.accept();
        sockets.push(r.webSocket!);
      }
      await sleep(1500);
      const late = await open();
      expect(late.status).toBe(101);
      late.webSocket!.accept();
      late.webSocket!.close(1000);
      sockets.forEach((s) => s.close(1000));
    },
  );
});

describe("claimed speed", () => {
  it(
    "a new tab claiming 10^12 GB/s is capped and on probation: the trusted tab keeps the traffic",
    { timeout: 30_000 },
    async () => {
      const model = "Qwen2.5-0.5B-Instruct-q4f32_1-MLC";
      const honest = await tabWithGpu(
        [model],
        {
          class: "mid",
          profile: null,
          benchmark: { matmulGflops: 4000, bandwidthGBs: 300, durationMs: 50 },
        },
        await newKeyPair(),
      );
      const honestStats = serveAll(honest, (job) => honest.serve(job as never, ["fine"]));
      // 20 finished jobs (PROBATION_JOBS) make the honest identity trusted.
      for (let i = 0; i < 20; i++) expect((await chat(model)).status).toBe(200);
      const liar = await tabWithGpu(
        [model],
        {
          class: "high",
          profile: null,
          benchmark: { matmulGflops: 1e12, bandwidthGBs: 1e12, durationMs: 1 },
        },
        await newKeyPair(),
      );
      const liarStats = serveAll(liar, (job) => liar.serve(job as never, ["spam"]));
      for (let i = 0; i < 40; i++) expect((await chat(model)).status).toBe(200);
      expect(honestStats.jobs + liarStats.jobs).toBe(60);
      console.log(`speed lie: the liar took ${liarStats.jobs} of 40 jobs`);
      expect(liarStats.jobs).toBeLessThanOrEqual(12);
      const nodes = await listed(model);
      const states = nodes.map((n) => n.trust.state).sort();
      expect(states).toEqual(["probation", "trusted"]);
      // The implausible claim itself was a fault.
      expect(nodes.find((n) => n.trust.state === "probation")?.trust.faults).toBeGreaterThanOrEqual(
        1,
      );
    },
  );
});

describe("trust state", () => {
  it("a quarantined tab loses its running job to another tab, gets no more jobs, earns no credit", async () => {
    const suspect = await tabs.tab(["tr-q"], { keys: await newKeyPair() });
    const resP = chat("tr-q", { stream: true });
    const job = await suspect.nextJob();
    suspect.send({ type: "job.accept", jobId: job.id });
    suspect.send({ type: "job.delta", jobId: job.id, seq: 0, text: "Hello " });
    const other = await tabs.tab(["tr-q"]);
    expect((await listed("tr-q")).map((n) => n.trust.state)).toEqual(["probation", "probation"]);
    await regionStub(appEnv, "wnam").quarantine(suspect.nodeId, "audit: answers scored low");
    expect((await suspect.next("job.cancel")).jobId).toBe(job.id);
    const moved = await other.next("job.assign");
    expect(moved.continueFrom).toBe("Hello ");
    other.serve(moved.job, ["world"]);
    expect(await streamText(await resP)).toEqual({ text: "Hello world", done: true });
    const nodes = await listed("tr-q");
    const q = nodes.find((n) => n.trust.state === "quarantined");
    expect(q?.trust.reason).toBe("audit: answers scored low");
    expect(q?.credits).toBe(0);
    // Only the other tab is offered new work.
    const next = chat("tr-q");
    other.serve(await other.nextJob(), ["again"]);
    expect((await next).status).toBe(200);
    expect(suspect.received.filter((m) => m.type === "job.assign")).toHaveLength(0);
  });

  it("a tab is told its trust state: at join, when quarantined (when and why), when released", async () => {
    const t = await tabs.tab(["tr-told"], { keys: await newKeyPair() });
    expect(await t.next("trust")).toMatchObject({
      type: "trust",
      state: "probation",
      jobs: 0,
      faults: 0,
      audits: { passed: 0, failed: 0 },
    });
    const before = Date.now();
    await regionStub(appEnv, "wnam").quarantine(t.nodeId, "operator: serving a renamed model");
    const q = await t.next("trust");
    expect(q).toMatchObject({ state: "quarantined", reason: "operator: serving a renamed model" });
    expect(q.quarantinedAt).toBeGreaterThanOrEqual(before - 1000);
    await runInDurableObject(regionStub(appEnv, "wnam"), (obj) =>
      (obj as unknown as { parts: RegionParts }).parts.trust.release(t.nodeId),
    );
    const released = await t.next("trust");
    expect(released.state).toBe("probation");
    expect(released.reason).toBeUndefined();
  });
});
