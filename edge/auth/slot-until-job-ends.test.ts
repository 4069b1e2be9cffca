import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv, chat, getJob, jobToken, useTabs } from "../../test/workerd/tab-helpers.js";
import { encodeVector } from "../../shared/protocol/embedding-vectors.js";
import { embeddingOf } from "../../test/support/deterministic-engine.js";
import { hashKey, newApiKey } from "./api-key.js";
import { clientStub } from "./client-slots.js";

/**
 * One rule (docs/limits.md, "Concurrency slots"): a caller's slot is held exactly as long as its
 * job can still use a tab on its behalf — not less when the client hangs up and the job runs on
 * for its resume grace, not more when the runtime cancels a non-streamed request's handler.
 */
const tabs = useTabs();

async function keyWith(concurrent: number): Promise<{ id: string; key: string }> {
  const { id, key } = newApiKey();
  await clientStub(appEnv, `key:${id}`).createKey(id, await hashKey(key), "slots", {
    rpm: 1000,
    concurrent,
  });
  return { id, key };
}

/** Open slots of a client, as its object holds them. */
function openSlots(client: string): Promise<number> {
  return runInDurableObject(
    clientStub(appEnv, client),
    (_obj, ctx) => ctx.storage.sql.exec(`SELECT count(*) AS n FROM slots`).one().n as number,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function send(key: string, body: object, signal?: AbortSignal): Promise<Response> {
  return SELF.fetch("http://tabgrid.test/v1/chat/completions", {
    method: "POST",
    ...(signal ? { signal } : {}),
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], ...body }),
  });
}

describe("a non-streamed client that hangs up", () => {
  it("frees its slot when the job it left behind ends", async () => {
    const { id, key } = await keyWith(1);
    const tab = await tabs.tab(["slot-ns-end"]);
    const hangUp = new AbortController();
    const first = send(key, { model: "slot-ns-end" }, hangUp.signal).catch(() => null);
    const job = await tab.nextJob();
    tab.accept(job);
    hangUp.abort();
    await first;
    // The job still runs on the tab: the slot is its.
    expect((await send(key, { model: "slot-ns-end" })).status).toBe(429);
    tab.serve(job, ["late"], { completion_tokens: 1 });
    await expect.poll(async () => (await getJob(job.id)).state, { timeout: 3000 }).toBe("done");
    // Before: the slot stayed until SLOT_TTL_MS (15 min), as the handler that would have
    // released it was cancelled with the client.
    await expect.poll(() => openSlots(`key:${id}`), { timeout: 3000 }).toBe(0);
    const second = send(key, { model: "slot-ns-end" });
    tab.serve(await tab.nextJob(), ["ok"], { completion_tokens: 1 });
    expect((await second).status).toBe(200);
  });

  it("lets go of its job, which is cancelled after its resume grace, and of its slot", async () => {
    const { id, key } = await keyWith(1);
    const tab = await tabs.tab(["slot-ns-cancel"]);
    const hangUp = new AbortController();
    const first = send(key, { model: "slot-ns-cancel" }, hangUp.signal).catch(() => null);
    const job = await tab.nextJob();
    tab.accept(job);
    // A long prefill: no text would reach the client for a while, so no write finds it gone; the
    // tab's reports keep its lease.
    const prefilling = setInterval(
      () => tab.send({ type: "job.progress", jobId: job.id, phase: "prefill" }),
      200,
    );
    try {
      hangUp.abort();
      await first;
      // The default resume grace is 500 ms. Before: nothing let go of the job, which ran on.
      const cancel = await Promise.race([tab.next("job.cancel"), sleep(3000).then(() => null)]);
      expect(cancel?.jobId).toBe(job.id);
    } finally {
      clearInterval(prefilling);
    }
    expect((await getJob(job.id)).state).toBe("cancelled");
    tab.done(job, "abort");
    await expect.poll(() => openSlots(`key:${id}`), { timeout: 3000 }).toBe(0);
  });
});

describe("an embeddings client that hangs up", () => {
  it("frees its slot when the job it left behind ends", async () => {
    const model = "snowflake-arctic-embed-s-q0f32-MLC-b4";
    const { id, key } = await keyWith(1);
    const tab = await tabs.tab([model]);
    const embed = (signal?: AbortSignal) =>
      SELF.fetch("http://tabgrid.test/v1/embeddings", {
        method: "POST",
        ...(signal ? { signal } : {}),
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model, input: "hello" }),
      });
    const answer = (job: { id: string }) => {
      tab.accept(job);
      const v = encodeVector(embeddingOf("hello", 384));
      tab.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [v] });
      tab.done(job, "stop", { prompt_tokens: 2, completion_tokens: 0 });
    };
    const hangUp = new AbortController();
    const first = embed(hangUp.signal).catch(() => null);
    const job = await tab.nextJob();
    hangUp.abort();
    await first;
    answer(job);
    await expect.poll(async () => (await getJob(job.id)).state, { timeout: 3000 }).toBe("done");
    // Before: the request kept the slot, and its handler, cancelled with the client, never let go.
    await expect.poll(() => openSlots(`key:${id}`), { timeout: 3000 }).toBe(0);
    const second = embed();
    answer(await tab.nextJob());
    expect((await second).status).toBe(200);
  });
});

describe("a streamed client that hangs up, leaving its job a resume grace", () => {
  it("keeps its slot while the job runs on, resumes without a second slot, frees it at the end", async () => {
    const { id, key } = await keyWith(1);
    const auth = { authorization: `Bearer ${key}` };
    const tab = await tabs.tab(["slot-grace"]);
    const grace = { stream: true, tabgrid: { resume_grace_ms: 60_000 } };
    const res = await chat("slot-grace", grace, auth);
    expect(res.status).toBe(200);
    const jobId = res.headers.get("x-tabgrid-job-id")!;
    const job = await tab.nextJob();
    tab.accept(job);
    tab.delta(job, 0, "one ");
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await sleep(300);

    // Before: the slot was freed as the body was cancelled, so the key ran a second job at once.
    const second = await chat("slot-grace", grace, auth);
    expect(second.status).toBe(429);
    await second.body?.cancel();

    // The client comes back for its job: no second slot is needed.
    const resumed = await SELF.fetch(`http://tabgrid.test/v1/jobs/${jobId}/stream?after=4`, {
      headers: { ...auth, ...jobToken(res) },
    });
    expect(resumed.status).toBe(200);
    tab.delta(job, 1, "two");
    tab.done(job, "stop", { completion_tokens: 2 });
    const text = await resumed.text();
    expect(text).toContain("two");
    expect(text).toContain("[DONE]");
    await expect.poll(() => openSlots(`key:${id}`), { timeout: 3000 }).toBe(0);
    expect((await getJob(job.id)).state).toBe("done");
  });

  it("three hang-ups in a row run one job at a time, not three", async () => {
    const { key } = await keyWith(1);
    const auth = { authorization: `Bearer ${key}` };
    const pool = [
      await tabs.tab(["slot-grace-3"]),
      await tabs.tab(["slot-grace-3"]),
      await tabs.tab(["slot-grace-3"]),
    ];
    let admitted = 0;
    for (let i = 0; i < 3; i++) {
      const res = await chat(
        "slot-grace-3",
        { stream: true, max_tokens: 4096, tabgrid: { resume_grace_ms: 60_000 } },
        auth,
      );
      if (res.status !== 200) {
        await res.body?.cancel();
        continue;
      }
      admitted++;
      const reader = res.body!.getReader();
      await reader.read();
      await reader.cancel();
      await sleep(300);
    }
    // Each admitted job runs on its own tab through its resume grace (nobody sent job.cancel).
    const assigned = pool.filter((t) => t.received.some((m) => m.type === "job.assign"));
    // Before: 3 admitted, 3 jobs running on 3 tabs (the audit's figures).
    expect({ admitted, running: assigned.length }).toEqual({ admitted: 1, running: 1 });
  });
});
