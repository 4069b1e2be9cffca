import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionChunkSchema, ChatCompletionSchema } from "../../shared/openai/chat.js";
import { CompletionSchema } from "../../shared/openai/completions.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { readSse } from "../../test/workerd/sse.js";
import { post, regionCounts, useTabs } from "../../test/workerd/tab-helpers.js";

const tabs = useTabs();
const tab = (models: string[]) => tabs.tab(models);

async function expectError(res: Response, status: number, param: string | null, code?: string) {
  expect(res.status).toBe(status);
  const body = OpenAIErrorBodySchema.parse(await res.json());
  expect(body.error.param).toBe(param);
  if (code) expect(body.error.code).toBe(code);
  // The request id in the body is the one in the header, so a pasted error can be traced.
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

const chat = (model: string, extra: object = {}) => ({
  model,
  messages: [{ role: "user", content: "hello" }],
  ...extra,
});

describe("invalid requests are 400 in OpenAI's shape, naming the field", () => {
  it.each([
    [{ messages: [{ role: "user", content: "x" }] }, "model"],
    [{ model: "m" }, "messages"],
    [{ model: "m", messages: [] }, "messages"],
    [{ model: "m", messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
    [chat("m", { temperature: 5 }), "temperature"],
    [chat("m", { max_tokens: 0 }), "max_tokens"],
    [chat("m", { n: 9 }), "n"],
    [chat("m", { stop: ["a", "b", "c", "d", "e"] }), "stop"],
  ])("%j -> param %s", async (body, param) => {
    await expectError(await post("/chat/completions", body), 400, param, "invalid_value");
  });

  it("rejects a body that is not JSON", async () => {
    await expectError(await post("/chat/completions", "{not json"), 400, null);
  });

  it("rejects a completion without a prompt", async () => {
    await expectError(await post("/completions", { model: "m" }), 400, "prompt");
  });

  it("answers unknown routes with a JSON 404", async () => {
    const res = await SELF.fetch("http://tabgrid.test/v1/nope");
    await expectError(res, 404, null, "unknown_route");
  });
});

describe("capacity errors", () => {
  it("404 when no tab serves the model", async () => {
    const body = await expectError(
      await post("/chat/completions", chat("nobody-serves-this")),
      404,
      "model",
      "model_not_found",
    );
    expect(body.error.message).toContain("nobody-serves-this");
  });

  it("when every tab with the model is busy, requests wait in order and are served as it frees up", async () => {
    const t = await tab(["busy-model"]);
    const first = post("/chat/completions", chat("busy-model"));
    const job1 = await t.nextJob();
    const second = post("/chat/completions", chat("busy-model"));
    // The second request waits in the region's queue until the tab is free again.
    await expect.poll(async () => (await regionCounts()).queued ?? 0).toBe(1);
    t.serve(job1, ["one"]);
    const job2 = await t.nextJob();
    t.serve(job2, ["two"]);
    expect(ChatCompletionSchema.parse(await (await first).json()).choices[0]?.message.content).toBe(
      "one",
    );
    expect(
      ChatCompletionSchema.parse(await (await second).json()).choices[0]?.message.content,
    ).toBe("two");
  });

  it("a full queue answers 429 with Retry-After; a request nobody frees up for gets 503", async () => {
    const t = await tab(["queue-model"]);
    const running = post("/chat/completions", chat("queue-model"));
    const job = await t.nextJob();
    // QUEUE_CAPACITY is 2 in the test configuration.
    const waiting = [
      post("/chat/completions", chat("queue-model")),
      post("/chat/completions", chat("queue-model")),
    ];
    await expect.poll(async () => (await regionCounts()).queued ?? 0).toBe(2);
    const refused = await post("/chat/completions", chat("queue-model"));
    await expectError(refused, 429, null, "queue_full");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    // Nobody frees up within QUEUE_WAIT_MS: the waiting requests end with 503 and Retry-After.
    for (const w of waiting) {
      const res = await w;
      await expectError(res, 503, null, "no_capacity");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // (The running job's tab never answered, so that job failed over and ended too.)
    void job;
    await (await running).text();
  });
});

describe("paused tabs", () => {
  it("a paused tab is offered no work; the request waits until it resumes", async () => {
    const t = await tab(["pause-model"]);
    t.send({ type: "status", state: "paused", models: ["pause-model"], reason: "on battery" });
    const resP = post("/chat/completions", chat("pause-model"));
    await expect.poll(async () => (await regionCounts()).queued ?? 0).toBe(1);
    expect(t.received.some((m) => m.type === "job.assign")).toBe(false);
    t.send({ type: "status", state: "idle", models: ["pause-model"] });
    t.serve(await t.nextJob(), ["after the pause"]);
    expect(ChatCompletionSchema.parse(await (await resP).json()).choices[0]?.message.content).toBe(
      "after the pause",
    );
  });

  it("a tab that rests after a job (job.done says paused) gets the next one only when idle again", async () => {
    const t = await tab(["rest-model"]);
    const first = post("/chat/completions", chat("rest-model"));
    const job1 = await t.nextJob();
    const second = post("/chat/completions", chat("rest-model"));
    await expect.poll(async () => (await regionCounts()).queued ?? 0).toBe(1);
    t.send({ type: "job.delta", jobId: job1.id, seq: 0, text: "one" });
    t.send({
      type: "job.done",
      jobId: job1.id,
      finishReason: "stop",
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      state: "paused",
    });
    expect((await first).status).toBe(200);
    expect(t.received.some((m) => m.type === "job.assign")).toBe(false);
    t.send({ type: "status", state: "idle", models: ["rest-model"] });
    t.serve(await t.nextJob(), ["two"]);
    expect((await second).status).toBe(200);
  });
});

describe("chat completions from a tab", () => {
  it("non-stream: the tab's text, usage, and job/request id headers", async () => {
    const t = await tab(["chat-a"]);
    const resP = post("/chat/completions", chat("chat-a", { max_tokens: 7, seed: 3, stop: "END" }));
    const job = await t.nextJob();
    expect(job.input).toEqual({ kind: "chat", messages: [{ role: "user", content: "hello" }] });
    expect(job.sampling).toEqual({ max_tokens: 7, seed: 3, stop: ["END"] });
    t.serve(job, ["Hel", "lo!"], { prompt_tokens: 9, completion_tokens: 2 });
    const res = await resP;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-tabgrid-job-id")).toBe(job.id);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const body = ChatCompletionSchema.parse(await res.json());
    expect(body.choices[0]?.message.content).toBe("Hello!");
    expect(body.choices[0]?.finish_reason).toBe("stop");
    expect(body.usage).toEqual({ prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
    // The tab is credited with the tokens it generated.
    expect(await t.next("job.credit")).toEqual({ type: "job.credit", jobId: job.id, credit: 2 });
  });

  it("stream: OpenAI chunks, usage chunk when asked, then [DONE]", async () => {
    const t = await tab(["chat-b"]);
    const resP = post(
      "/chat/completions",
      // Two tokens asked for: "length" after two is a cut an honest tab makes (length-claim.ts).
      chat("chat-b", { stream: true, stream_options: { include_usage: true }, max_tokens: 2 }),
    );
    const job = await t.nextJob();
    t.send({ type: "job.accept", jobId: job.id });
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "one " });
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "two" });
    t.done(job, "length", { prompt_tokens: 4, completion_tokens: 2 });
    const res = await resP;
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const data = await readSse(res);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => ChatCompletionChunkSchema.parse(JSON.parse(d)));
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("one two");
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("length");
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage).toEqual({
      prompt_tokens: 4,
      completion_tokens: 2,
      total_tokens: 6,
    });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it("drops a duplicated delta so the client never sees text twice", async () => {
    const t = await tab(["chat-dup"]);
    const resP = post("/chat/completions", chat("chat-dup", { stream: true }));
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "a" });
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "a" });
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "b" });
    t.done(job, "stop");
    const data = await readSse(await resP);
    const chunks = data.slice(0, -1).map((d) => ChatCompletionChunkSchema.parse(JSON.parse(d)));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("ab");
  });

  it("a tab error mid-stream reaches the client as an error event, without [DONE]", async () => {
    const t = await tab(["chat-err"]);
    const resP = post("/chat/completions", chat("chat-err", { stream: true }));
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "partial" });
    t.send({
      type: "job.error",
      jobId: job.id,
      error: { code: "device_lost", message: "GPU device was lost" },
    });
    const data = await readSse(await resP);
    expect(data).not.toContain("[DONE]");
    const last = OpenAIErrorBodySchema.parse(JSON.parse(data.at(-1) as string));
    expect(last.error.code).toBe("device_lost");
  });

  it("a tab that disconnects mid-job ends the client's stream with a clear error", async () => {
    const t = await tab(["chat-gone"]);
    const resP = post("/chat/completions", chat("chat-gone", { stream: true }));
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "so far" });
    t.close();
    const data = await readSse(await resP);
    const last = OpenAIErrorBodySchema.parse(JSON.parse(data.at(-1) as string));
    expect(last.error.code).toBe("node_gone");
  });

  it("non-stream tab error becomes an HTTP error", async () => {
    const t = await tab(["chat-err2"]);
    const resP = post("/chat/completions", chat("chat-err2"));
    const job = await t.nextJob();
    t.send({ type: "job.error", jobId: job.id, error: { code: "engine_error", message: "boom" } });
    await expectError(await resP, 502, null, "engine_error");
  });

  it("a client that goes away makes the tab stop, and the tab is free again", async () => {
    const t = await tab(["chat-cancel"]);
    const res = await (async () => {
      const p = post("/chat/completions", chat("chat-cancel", { stream: true }));
      return p;
    })();
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "x" });
    await res.body?.cancel();
    const cancel = await t.next("job.cancel");
    expect(cancel.jobId).toBe(job.id);
    t.done(job, "abort");
    // The tab takes the next job once it confirmed the abort.
    const again = post("/chat/completions", chat("chat-cancel"));
    const job2 = await t.nextJob();
    t.serve(job2, ["fine"]);
    expect((await again).status).toBe(200);
  });
});

describe("plain-text completions", () => {
  it("non-stream and stream", async () => {
    const t = await tab(["cmpl"]);
    const resP = post("/completions", { model: "cmpl", prompt: "Once upon", max_tokens: 4 });
    const job = await t.nextJob();
    expect(job.input).toEqual({ kind: "completion", prompt: "Once upon" });
    t.serve(job, [" a time"]);
    const body = CompletionSchema.parse(await (await resP).json());
    expect(body.choices[0]?.text).toBe(" a time");

    const streamP = post("/completions", { model: "cmpl", prompt: "x", stream: true });
    const job2 = await t.nextJob();
    t.serve(job2, ["y", "z"]);
    const data = await readSse(await streamP);
    expect(data.at(-1)).toBe("[DONE]");
    const texts = data
      .slice(0, -1)
      .map((d) => CompletionSchema.parse(JSON.parse(d)).choices[0]?.text);
    expect(texts.join("")).toBe("yz");
  });
});
