import {
  SELF,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import type { JobView } from "./job-view.js";
import type { RegionParts } from "./region-parts.js";
import {
  appEnv,
  chat,
  getJob,
  jobToken,
  post,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";

function scriptedHello(models: string[]) {
  return {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    adapter: {
      vendor: "google",
      architecture: "swiftshader",
      description: "scripted",
      shaderF16: false,
      maxBufferSize: 1,
      maxStorageBufferBindingSize: 1,
    },
    models,
    state: "idle",
    agent: "scripted-tab/1",
  };
}

const tabs = useTabs();
const tab = (models: string[]) => tabs.tab(models);

describe("failover mid-stream", () => {
  it("a tab that leaves mid-stream is replaced and the client's text continues without gap or repeat", async () => {
    const first = await tab(["fo-leave"]);
    const resP = chat("fo-leave", { stream: true });
    const job = await first.nextJob();
    first.send({ type: "job.accept", jobId: job.id });
    first.send({ type: "job.delta", jobId: job.id, seq: 0, text: "The quick " });
    const second = await tab(["fo-leave"]);
    first.close();
    const assign = await second.next("job.assign");
    expect(assign.job.id).toBe(job.id);
    expect(assign.attempt).toBe(2);
    expect(assign.continueFrom).toBe("The quick ");
    second.serve(assign.job, ["brown fox"], { completion_tokens: 2 });
    const out = await streamText(await resP);
    expect(out).toEqual({ text: "The quick brown fox", done: true });
    // Credit: the replacement earns the 2 tokens it generated; the earlier text is not its.
    expect((await second.next("job.credit")).credit).toBe(2);
    const view = await getJob(job.id);
    expect(view.state).toBe("done");
    expect(view.attempts).toBe(2);
  });

  it("usage after a failover counts the earlier tab's text too, not only the replacement's tokens", async () => {
    // The answer "You said: ask" is 3 tokens of the test engine's tokenizer. The first tab wrote
    // "You" and left; the replacement, like WebLLM, counts only the tokens it generated after
    // `continueFrom` (the delivered text is its prompt) and reports 2.
    const first = await tab(["fo-usage"]);
    const resP = post("/chat/completions", {
      model: "fo-usage",
      messages: [{ role: "user", content: "ask" }],
      max_tokens: 16,
    });
    const job = await first.nextJob();
    first.send({ type: "job.accept", jobId: job.id });
    first.send({ type: "job.delta", jobId: job.id, seq: 0, text: "You" });
    const second = await tab(["fo-usage"]);
    first.close();
    const assign = await second.next("job.assign");
    expect(assign.continueFrom).toBe("You");
    second.serve(assign.job, [" said:", " ask"], { completion_tokens: 2 });
    const body = ChatCompletionSchema.parse(await (await resP).json());
    expect(body.choices[0]?.message.content).toBe("You said: ask");
    // It did not say how many tokens "You" was: the earlier text is counted at its bound (one
    // token per byte, what max_tokens was charged for it), never fewer than it can have been.
    expect(body.usage?.completion_tokens).toBe(3 + 2);
    // The replacement is credited with its own tokens, not a share of the whole answer.
    expect((await second.next("job.credit")).credit).toBe(2);
    expect((await getJob(job.id)).usage?.completion_tokens).toBe(5);
  });

  it("a replacement that counted the delivered text gives the exact usage; a lie about it is clamped", async () => {
    for (const [said, want] of [
      [1, 3],
      [1e6, 5],
    ] as const) {
      const first = await tab(["fo-usage-2"]);
      const resP = post("/chat/completions", {
        model: "fo-usage-2",
        messages: [{ role: "user", content: "ask" }],
        max_tokens: 16,
      });
      const job = await first.nextJob();
      first.send({ type: "job.accept", jobId: job.id });
      first.send({ type: "job.delta", jobId: job.id, seq: 0, text: "You" });
      const second = await tab(["fo-usage-2"]);
      first.close();
      const assign = await second.next("job.assign");
      second.accept(assign.job);
      second.delta(assign.job, 0, " said: ask");
      second.done(job, "stop", { prompt_tokens: 5, completion_tokens: 2 }, said);
      const body = ChatCompletionSchema.parse(await (await resP).json());
      expect(body.usage?.completion_tokens).toBe(want);
      second.close();
    }
  });

  it("a tab that stops sending tokens loses the job after its lease and is told to stop", async () => {
    const stalled = await tab(["fo-stall"]);
    const resP = chat("fo-stall", { stream: true });
    const job = await stalled.nextJob();
    stalled.send({ type: "job.accept", jobId: job.id });
    stalled.send({ type: "job.delta", jobId: job.id, seq: 0, text: "a" });
    const rescuer = await tab(["fo-stall"]);
    // The lease (LEASE_MS in the test config) runs out on the Region object's alarm.
    const moved = await rescuer.next("job.assign");
    expect(moved.continueFrom).toBe("a");
    expect((await stalled.next("job.cancel")).jobId).toBe(job.id);
    // Late frames from the stalled tab are ignored: nothing duplicated.
    stalled.send({ type: "job.delta", jobId: job.id, seq: 1, text: "STALE" });
    rescuer.serve(moved.job, ["b"]);
    expect(await streamText(await resP)).toEqual({ text: "ab", done: true });
  });

  it("a tab that never accepts loses the job to another", async () => {
    const silent = await tab(["fo-accept"]);
    const resP = chat("fo-accept");
    await silent.nextJob();
    const other = await tab(["fo-accept"]);
    const moved = await other.next("job.assign");
    expect(moved.continueFrom).toBeUndefined();
    other.serve(moved.job, ["ok"]);
    expect(ChatCompletionSchema.parse(await (await resP).json()).choices[0]?.message.content).toBe(
      "ok",
    );
  });

  it("after 3 failed attempts the client gets a clear error event, not a hang", async () => {
    const resP = (async () => {
      const t = await tab(["fo-three"]);
      return { t, res: chat("fo-three", { stream: true }) };
    })();
    const { t: t1, res } = await resP;
    const j = await t1.nextJob();
    for (const [i, current] of [[1, t1]] as const) (void i, void current);
    let current = t1;
    let job = j;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const next = attempt < 3 ? await tab(["fo-three"]) : null;
      current.send({
        type: "job.error",
        jobId: job.id,
        error: { code: "engine_error", message: `failure ${attempt}` },
      });
      if (!next) break;
      job = (await next.next("job.assign")).job;
      current = next;
    }
    const out = await streamText(await res);
    expect(out.done).toBe(false);
    expect(out.error).toContain("gave up after 3 attempts");
  });

  it("with no tab to take over, the job fails with the original cause once the wait ends", async () => {
    const only = await tab(["fo-alone"]);
    const resP = chat("fo-alone");
    const job = await only.nextJob();
    only.send({
      type: "job.error",
      jobId: job.id,
      error: { code: "device_lost", message: "GPU device was lost" },
    });
    const res = await resP;
    expect(res.status).toBe(502);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.code).toBe("device_lost");
    expect(body.error.message).toContain("no other tab could take over");
  });

  it("one tab's bad_request does not end the job on its word: with no second tab it fails as the tab's fault", async () => {
    const t = await tab(["fo-bad"]);
    const resP = chat("fo-bad");
    const job = await t.nextJob();
    t.send({
      type: "job.error",
      jobId: job.id,
      error: { code: "bad_request", message: "prompt longer than the context window" },
    });
    const res = await resP;
    // Trust no tab (docs/trust.md): bad_request reaches a client only when a second tab agrees.
    expect(res.status).toBe(502);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.code).toBe("engine_error");
    expect(body.error.message).toContain("no second tab confirmed it");
    expect((await getJob(job.id)).attempts).toBe(1);
  });
});

describe("resumable jobs", () => {
  it("a dropped stream resumes by job id after the characters already received", async () => {
    const t = await tab(["rs-model"]);
    const res = await chat("rs-model", { stream: true, tabgrid: { resume_grace_ms: 10_000 } });
    const jobId = res.headers.get("x-tabgrid-job-id") as string;
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId, seq: 0, text: "Hello, " });
    // Read until the first content arrives, then drop the connection.
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes("Hello")) seen += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    t.send({ type: "job.delta", jobId, seq: 1, text: "world" });
    await expect.poll(async () => (await getJob(jobId)).text).toBe("Hello, world");
    expect((await getJob(jobId)).state).toBe("streaming");
    const resumed = SELF.fetch(
      `http://tabgrid.test/v1/jobs/${jobId}/stream?after=7&include_usage=true`,
      { headers: jobToken(res) },
    );
    t.done(job, "stop", { prompt_tokens: 1, completion_tokens: 3 });
    const out = await streamText(await resumed);
    expect(out).toEqual({ text: "world", done: true });
  });

  it("a finished job can be read again until it expires", async () => {
    const t = await tab(["rs-done"]);
    const resP = chat("rs-done");
    const job = await t.nextJob();
    t.serve(job, ["all ", "of it"]);
    const first = await resP;
    const again = await streamText(
      await SELF.fetch(`http://tabgrid.test/v1/jobs/${job.id}/stream`, {
        headers: jobToken(first),
      }),
    );
    expect(again).toEqual({ text: "all of it", done: true });
    // Expire it now: fire its expiry timer through the object's alarm.
    const stub = regionStub(appEnv, "wnam");
    await runInDurableObject(stub, (_o, ctx) => {
      ctx.storage.sql.exec(`UPDATE timers SET at = 0 WHERE name = ?`, `expire:${job.id}`);
    });
    await runDurableObjectAlarm(stub);
    const gone = await SELF.fetch(`http://tabgrid.test/v1/jobs/${job.id}`, {
      headers: jobToken(first),
    });
    expect(gone.status).toBe(404);
  });

  it("DELETE cancels: the tab is told to stop and the job reads as cancelled", async () => {
    const t = await tab(["rs-cancel"]);
    const res = await chat("rs-cancel", { stream: true });
    const job = await t.nextJob();
    const del = await SELF.fetch(`http://tabgrid.test/v1/jobs/${job.id}`, {
      method: "DELETE",
      headers: jobToken(res),
    });
    expect(del.status).toBe(200);
    expect(((await del.json()) as JobView).state).toBe("cancelled");
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    const out = await streamText(res);
    expect(out.error).toBeDefined();
  });

  it("unknown and malformed job ids are 404, a bad `after` is 400", async () => {
    expect((await SELF.fetch("http://tabgrid.test/v1/jobs/nope")).status).toBe(404);
    const unknown = `job_wnam_${"0".repeat(32)}`;
    expect((await SELF.fetch(`http://tabgrid.test/v1/jobs/${unknown}`)).status).toBe(404);
    expect(
      (await SELF.fetch(`http://tabgrid.test/v1/jobs/${unknown}/stream?after=-1`)).status,
    ).toBe(400);
  });

  it("a client that goes away (no grace asked) makes the tab stop", async () => {
    const t = await tab(["rs-gone"]);
    const res = await chat("rs-gone", { stream: true });
    const job = await t.nextJob();
    await res.body?.cancel();
    expect((await t.next("job.cancel")).jobId).toBe(job.id);
    expect((await getJob(job.id)).state).toBe("cancelled");
  });
});

describe("the Region object is evicted mid-job", () => {
  it("the job keeps going in the new instance and the client resumes the rest", async () => {
    // An object is only evicted when no request is in flight, so the client has dropped its
    // stream (asking for a long resume grace) when the eviction happens.
    const t = await tab(["ev-mid"]);
    const res = await chat("ev-mid", { stream: true, tabgrid: { resume_grace_ms: 30_000 } });
    const job = await t.nextJob();
    t.send({ type: "job.accept", jobId: job.id });
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "before " });
    await expect.poll(async () => (await getJob(job.id)).text).toBe("before ");
    await res.body?.cancel();
    await evictDurableObject(regionStub(appEnv, "wnam"));
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "after" });
    t.done(job, "stop");
    await expect.poll(async () => (await getJob(job.id)).state).toBe("done");
    const rest = await SELF.fetch(`http://tabgrid.test/v1/jobs/${job.id}/stream?after=7`, {
      headers: jobToken(res),
    });
    expect(await streamText(rest)).toEqual({ text: "after", done: true });
    expect((await getJob(job.id)).text).toBe("before after");
  });
});

describe("liveness", () => {
  it("a tab silent for 1.5 status intervals is closed as stale and its job moves on", async () => {
    const quiet = await tab(["lv-model"]);
    const resP = chat("lv-model");
    const job = await quiet.nextJob();
    quiet.send({ type: "job.accept", jobId: job.id });
    // The accept reaches the Region through the tab's link: wait until it did, so it does not
    // refresh the tab's lastSeen after the line below has set it back.
    await vi.waitFor(async () => expect((await getJob(job.id)).state).toBe("streaming"));
    const stub = regionStub(appEnv, "wnam");
    // Pretend the tab was last heard from long ago, then run the liveness sweep now.
    await runInDurableObject(stub, (obj, ctx) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      const record = parts.tabs.get(quiet.nodeId);
      if (record) record.lastSeen = 0;
      ctx.storage.sql.exec(`INSERT OR REPLACE INTO timers (name, at) VALUES ('liveness', 0)`);
    });
    const backup = await tab(["lv-model"]);
    await runDurableObjectAlarm(stub);
    expect((await quiet.closed).code).toBe(CloseCode.Stale);
    const moved = await backup.next("job.assign");
    backup.serve(moved.job, ["alive"]);
    expect((await resP).status).toBe(200);
  });
});

describe("limits on contributor connections", () => {
  it("too many tabs from one address get 429 before the upgrade", async () => {
    const open = () =>
      SELF.fetch("http://tabgrid.test/v1/nodes/connect", {
        headers: { upgrade: "websocket", "cf-connecting-ip": "203.0.113.9" },
      });
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await open();
      expect(r.status).toBe(101);
      const ws = r.webSocket!;
      // Registered tabs hold their slots (a socket silent past HELLO_DEADLINE_MS gives it back).
      const challenged = new Promise((resolve) => ws.addEventListener("message", resolve));
      ws.accept();
      await challenged;
      ws.send(JSON.stringify(scriptedHello(["fo-slots"])));
      sockets.push(ws);
    }
    const refused = await open();
    expect(refused.status).toBe(429);
    const body = OpenAIErrorBodySchema.parse(await refused.json());
    expect(body.error.code).toBe("too_many_nodes");
    expect(body.error.request_id).toBe(refused.headers.get("x-request-id"));
    sockets.forEach((s) => s.close(1000));
    // 40 sequential upgrades, each bridged by the Worker's tab link (edge/tab-link/): 1.5 s here,
    // more on a loaded 2-core machine; the limit, not the speed, is what this test checks.
  }, 30_000);
});
