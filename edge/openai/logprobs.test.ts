import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { SERVED_TOP_LOGPROBS, type TokenLogprob } from "../../shared/protocol/logprobs.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { SCORE_LOGPROBS } from "../../test/support/deterministic-engine.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";
import { getJob } from "../../test/workerd/tab-helpers.js";

/**
 * logprobs / top_logprobs with the official `openai` client: the tab's engine returns them
 * (job.logprobs frames), the coordinator checks them against the job and gives them in OpenAI's
 * shape; a tab's wrong ones are its fault and never reach the client.
 */
const client = workerdOpenAI();

const tabs: Array<{ close(): void }> = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));
async function serving(model: string): Promise<EngineTab> {
  const t = await EngineTab.connect(model);
  tabs.push(t);
  return t;
}
async function scripted(model: string): Promise<ScriptedTab> {
  const t = await ScriptedTab.connect([model]);
  tabs.push(t);
  return t;
}

const bytes = (s: string) => [...new TextEncoder().encode(s)];

describe("logprobs", () => {
  it("non-streamed: one entry per token with its bytes and top_logprobs alternatives", async () => {
    const tab = await serving("lp-whole");
    const r = await client.chat.completions.create({
      model: "lp-whole",
      messages: [{ role: "user", content: "héllo there" }],
      logprobs: true,
      top_logprobs: 3,
    });
    const choice = r.choices[0]!;
    expect(choice.message.content).toBe("You said: héllo there");
    const content = choice.logprobs?.content ?? [];
    expect(content.map((e) => e.token)).toEqual(["You", " said:", " héllo", " there"]);
    expect(content[2]).toEqual({
      token: " héllo",
      logprob: SCORE_LOGPROBS.own,
      bytes: bytes(" héllo"),
      top_logprobs: [
        { token: " héllo", logprob: SCORE_LOGPROBS.own, bytes: bytes(" héllo") },
        { token: "alt1", logprob: SCORE_LOGPROBS.known, bytes: bytes("alt1") },
        { token: "alt2", logprob: SCORE_LOGPROBS.known - 1, bytes: bytes("alt2") },
      ],
    });
    expect(tab.jobs[0]?.sampling.logprobs).toEqual({ top: 3 });
    expect(choice.logprobs?.refusal).toBeNull();
  });

  it("without logprobs the choice says null and the tab is not asked", async () => {
    const tab = await serving("lp-none");
    const r = await client.chat.completions.create({
      model: "lp-none",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(r.choices[0]?.logprobs).toBeNull();
    expect(tab.jobs[0]?.sampling.logprobs).toBeUndefined();
  });

  it("streamed: the stream helper assembles them; usage and finish_reason still end it", async () => {
    await serving("lp-stream");
    const stream = client.chat.completions.stream({
      model: "lp-stream",
      messages: [{ role: "user", content: "a b c" }],
      logprobs: true,
      top_logprobs: 0,
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0]!;
    expect(choice.finish_reason).toBe("stop");
    expect(choice.logprobs?.content?.map((e) => e.token).join("")).toBe("You said: a b c");
    expect(choice.logprobs?.content?.every((e) => e.top_logprobs.length === 0)).toBe(true);
    expect(final.usage?.completion_tokens).toBe(5);
  });

  it("streamed: each content chunk carries its own tokens' entries, as OpenAI sends them", async () => {
    await serving("lp-chunks");
    const stream = await client.chat.completions.create({
      model: "lp-chunks",
      messages: [{ role: "user", content: "a b c" }],
      logprobs: true,
      top_logprobs: 2,
      stream: true,
    });
    const pieces: Array<{ content: string; tokens: string[] | null }> = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice?.delta.content) continue;
      const tokens = choice.logprobs?.content?.map((e) => e.token) ?? null;
      pieces.push({ content: choice.delta.content, tokens });
      expect(choice.logprobs?.content?.every((e) => e.top_logprobs.length === 2)).toBe(true);
    }
    expect(pieces.length).toBeGreaterThan(1);
    for (const p of pieces) expect(p.tokens?.join("")).toBe(p.content);
    expect(pieces.map((p) => p.content).join("")).toBe("You said: a b c");
  });

  it("n > 1: each choice has its own", async () => {
    await serving("lp-n");
    const r = await client.chat.completions.create({
      model: "lp-n",
      messages: [{ role: "user", content: "x" }],
      n: 2,
      logprobs: true,
    });
    expect(r.choices.map((c) => c.logprobs?.content?.length)).toEqual([3, 3]);
  });

  it.each([
    [{ logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    [{ logprobs: true, top_logprobs: SERVED_TOP_LOGPROBS + 1 }, "top_logprobs"],
    [{ top_logprobs: 2 }, "top_logprobs"],
    [
      {
        logprobs: true,
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      },
      "logprobs",
    ],
  ])("what cannot be honoured is a 400 naming the field: %j", async (extra, param) => {
    const err = await client.chat.completions
      .create({ model: "lp-any", messages: [{ role: "user", content: "x" }], ...extra } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
  });
});

describe("a tab's wrong logprobs", () => {
  const entry = (token: string, top: number): TokenLogprob => ({
    token,
    logprob: -1,
    top: Array.from({ length: top }, (_, i) => ({ token: `t${i}`, logprob: -1 - i })),
  });

  it("more alternatives than asked: the tab is cut off and another tab finishes the answer", async () => {
    const bad = await scripted("lp-bad");
    const answer = client.chat.completions.create({
      model: "lp-bad",
      messages: [{ role: "user", content: "one two" }],
      logprobs: true,
      top_logprobs: 1,
    });
    const { job } = await bad.next("job.assign");
    bad.send({ type: "job.accept", jobId: job.id });
    bad.send({ type: "job.delta", jobId: job.id, seq: 0, text: "You" });
    const good = await serving("lp-bad");
    bad.send({ type: "job.logprobs", jobId: job.id, entries: [entry("You", 3)] });
    expect((await bad.next("job.cancel")).jobId).toBe(job.id);
    const r = await answer;
    expect(r.choices[0]?.message.content).toBe("You said: one two");
    // Continued after a failover: the first tab's entries are not given, so none are.
    expect(r.choices[0]?.logprobs).toBeNull();
    expect(good.jobs).toHaveLength(1);
  });

  it("a positive logprob breaks the frame schema: the socket closes and the job moves on", async () => {
    const bad = await scripted("lp-positive");
    const answer = client.chat.completions.create({
      model: "lp-positive",
      messages: [{ role: "user", content: "one" }],
      logprobs: true,
    });
    const { job } = await bad.next("job.assign");
    bad.send({ type: "job.accept", jobId: job.id });
    await serving("lp-positive");
    bad.send({
      type: "job.logprobs",
      jobId: job.id,
      entries: [{ token: "You", logprob: 0.5, top: [] }],
    });
    await bad.closed;
    const r = await answer;
    expect(r.choices[0]?.message.content).toBe("You said: one");
    // The second tab wrote the whole answer (nothing was delivered before), so its entries count.
    expect(r.choices[0]?.logprobs?.content).toHaveLength(3);
  });

  it("more entries than the text sent so far can have tokens: cut off before they reach a stream", async () => {
    const bad = await scripted("lp-ahead");
    const answer = client.chat.completions.create({
      model: "lp-ahead",
      messages: [{ role: "user", content: "one two" }],
      logprobs: true,
      stream: true,
    });
    const { job } = await bad.next("job.assign");
    bad.send({ type: "job.accept", jobId: job.id });
    bad.send({ type: "job.delta", jobId: job.id, seq: 0, text: "You" });
    await serving("lp-ahead");
    // "You" is 3 bytes: at most 3 tokens and the stop token.
    bad.send({
      type: "job.logprobs",
      jobId: job.id,
      entries: Array.from({ length: 5 }, () => entry("x", 0)),
    });
    expect((await bad.next("job.cancel")).jobId).toBe(job.id);
    let text = "";
    const given: string[] = [];
    for await (const chunk of await answer) {
      text += chunk.choices[0]?.delta.content ?? "";
      given.push(...(chunk.choices[0]?.logprobs?.content?.map((e) => e.token) ?? []));
    }
    expect(text).toBe("You said: one two");
    expect(given).not.toContain("x");
  });

  it("after a failover, more entries than the replacement's own text can have tokens: cut off", async () => {
    const first = await scripted("lp-moved");
    const answer = client.chat.completions.create({
      model: "lp-moved",
      messages: [{ role: "user", content: "one two" }],
      logprobs: true,
      stream: true,
    });
    const { job } = await first.next("job.assign");
    first.send({ type: "job.accept", jobId: job.id });
    first.send({ type: "job.delta", jobId: job.id, seq: 0, text: "a".repeat(50) });
    await expect.poll(async () => (await getJob(job.id)).text).toHaveLength(50);
    const replacement = await scripted("lp-moved");
    first.close();
    const moved = (await replacement.next("job.assign")).job;
    const last = await scripted("lp-moved");
    const rest = last.next("job.assign").then((a) => (last.serve(a.job, ["c"]), a));
    replacement.send({ type: "job.accept", jobId: moved.id });
    replacement.send({ type: "job.delta", jobId: moved.id, seq: 0, text: "b" });
    // "b" is one byte: one token and the stop token at most, whatever came before it.
    replacement.send({
      type: "job.logprobs",
      jobId: moved.id,
      entries: Array.from({ length: 10 }, () => entry("x", 0)),
    });
    replacement.done(moved, "stop", { completion_tokens: 1 });
    let text = "";
    const given: string[] = [];
    for await (const chunk of await answer) {
      text += chunk.choices[0]?.delta.content ?? "";
      given.push(...(chunk.choices[0]?.logprobs?.content?.map((e) => e.token) ?? []));
    }
    expect(given).not.toContain("x");
    expect((await replacement.next("job.cancel")).jobId).toBe(job.id);
    expect((await rest).continueFrom).toBe(`${"a".repeat(50)}b`);
    expect(text).toBe(`${"a".repeat(50)}bc`);
  });

  it("more entries than the tokens counted at the end: the client gets null, not them", async () => {
    const bad = await scripted("lp-many");
    const answer = client.chat.completions.create({
      model: "lp-many",
      messages: [{ role: "user", content: "x" }],
      logprobs: true,
    });
    const { job } = await bad.next("job.assign");
    bad.send({ type: "job.accept", jobId: job.id });
    bad.send({ type: "job.delta", jobId: job.id, seq: 0, text: "ok" });
    bad.send({
      type: "job.logprobs",
      jobId: job.id,
      entries: Array.from({ length: 3 }, () => entry("ok", 0)),
    });
    // The tab counts one token: its three entries cannot all be the answer's.
    bad.send({
      type: "job.done",
      jobId: job.id,
      finishReason: "stop",
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    });
    const r = await answer;
    expect(r.choices[0]?.message.content).toBe("ok");
    expect(r.choices[0]?.logprobs).toBeNull();
  });

  /**
   * Values no distribution can have (WebLLM reads the token's and the alternatives' from one
   * softmax, most likely first): a tab that makes them up this way is cut off before a stream
   * passes them on, and another tab's answer reaches the client.
   */
  it.each([
    {
      lie: "alternatives not most likely first",
      temperature: 1,
      entry: {
        token: "You",
        logprob: -2,
        top: [
          { token: "a", logprob: -2 },
          { token: "You", logprob: -0.5 },
        ],
      },
    },
    {
      lie: "a token surer than the most likely alternative",
      temperature: 1,
      entry: { token: "You", logprob: 0, top: [{ token: "a", logprob: -0.7 }] },
    },
    {
      lie: "alternatives surer than certain together",
      temperature: 1,
      entry: {
        token: "You",
        logprob: -0.1,
        top: [
          { token: "You", logprob: -0.1 },
          { token: "a", logprob: -0.2 },
        ],
      },
    },
    {
      lie: "at temperature 0, a token less likely than the most likely one",
      temperature: 0,
      entry: { token: "You", logprob: -3, top: [{ token: "a", logprob: -0.05 }] },
    },
  ])(
    "incoherent values ($lie): cut off before a stream passes them on",
    async ({ temperature, entry: lie }) => {
      const model = `lp-incoherent-${temperature}-${lie.logprob}`;
      const bad = await scripted(model);
      const answer = client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "one" }],
        logprobs: true,
        top_logprobs: lie.top.length,
        temperature,
        stream: true,
      });
      const { job } = await bad.next("job.assign");
      bad.send({ type: "job.accept", jobId: job.id });
      bad.send({ type: "job.delta", jobId: job.id, seq: 0, text: "You" });
      await serving(model);
      bad.send({ type: "job.logprobs", jobId: job.id, entries: [lie] });
      expect((await bad.next("job.cancel")).jobId).toBe(job.id);
      let text = "";
      const given: number[] = [];
      for await (const chunk of await answer) {
        text += chunk.choices[0]?.delta.content ?? "";
        given.push(...(chunk.choices[0]?.logprobs?.content?.map((e) => e.logprob) ?? []));
      }
      expect(text).toBe("You said: one");
      expect(given).not.toContain(lie.logprob);
      expect(given.every((v) => v === SCORE_LOGPROBS.own)).toBe(true);
    },
  );

  it("coherent values pass: greedy ties, a masked alternative at -9999, a token outside the alternatives", async () => {
    const model = "lp-coherent";
    const tab = await scripted(model);
    const answer = client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "one" }],
      logprobs: true,
      top_logprobs: 3,
      temperature: 0,
    });
    const { job } = await tab.next("job.assign");
    const entries: TokenLogprob[] = [
      // Two tokens tied at the top: greedy sampling may take either.
      {
        token: "a",
        logprob: Math.log(0.5),
        top: [
          { token: "b", logprob: Math.log(0.5) },
          { token: "a", logprob: Math.log(0.5) },
          { token: "c", logprob: -9999 },
        ],
      },
      {
        token: "b",
        logprob: 0,
        top: [
          { token: "b", logprob: 0 },
          { token: "c", logprob: -9999 },
          { token: "d", logprob: -9999 },
        ],
      },
    ];
    tab.send({ type: "job.accept", jobId: job.id });
    tab.send({ type: "job.delta", jobId: job.id, seq: 0, text: "ab" });
    tab.send({ type: "job.logprobs", jobId: job.id, entries });
    tab.done(job, "stop", { completion_tokens: 2 });
    const r = await answer;
    expect(r.choices[0]?.message.content).toBe("ab");
    expect(r.choices[0]?.logprobs?.content?.map((e) => e.logprob)).toEqual([Math.log(0.5), 0]);
  });
});
