import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, UPSTREAM_TEXT, type FakeUpstream } from "../support/fake-upstream.js";
import { startWranglerDev, type WranglerDev } from "../support/wrangler-dev.js";

/**
 * Hybrid edge→cloud: with FALLBACK_URL configured and no tab able to take the request, the
 * coordinator (real wrangler dev) forwards it to the upstream and streams the answer back
 * unchanged, marked as served by the fallback. The official openai client is the client.
 */
let upstream: FakeUpstream;
let dev: WranglerDev;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  dev = await startWranglerDev({
    vars: {
      FALLBACK_URL: upstream.url,
      FALLBACK_API_KEY: "upstream-secret",
      FALLBACK_MODEL: "cloud-model",
    },
  });
});
afterAll(async () => {
  await dev?.stop();
  await upstream?.close();
});

describe("cloud fallback", () => {
  it("streams the upstream's answer unchanged when no tab serves the model", async () => {
    const client = new OpenAI({ baseURL: `${dev.origin}/v1`, apiKey: "unused" });
    const { data: stream, response } = await client.chat.completions
      .create({
        model: "Qwen2.5-0.5B-Instruct-q4f32_1-MLC",
        messages: [{ role: "user", content: "no tab is online" }],
        stream: true,
        temperature: 0.3,
      })
      .withResponse();
    expect(response.headers.get("x-tabgrid-served-by")).toBe("fallback");
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(UPSTREAM_TEXT.join(""));
    const sent = upstream.requests.at(-1);
    expect(sent?.path).toBe("/v1/chat/completions");
    expect(sent?.authorization).toBe("Bearer upstream-secret");
    expect(sent?.body).toMatchObject({ model: "cloud-model", temperature: 0.3, stream: true });
    expect(sent?.body.messages).toEqual([{ role: "user", content: "no tab is online" }]);
  });

  it("leaves out Tabgrid's own `tabgrid` object, which OpenAI would refuse", async () => {
    const client = new OpenAI({ baseURL: `${dev.origin}/v1`, apiKey: "unused" });
    const done = await client.chat.completions.create({
      model: "any-model",
      messages: [{ role: "user", content: "hi" }],
      // What the web SDK sends for the direct path, and a latency budget.
      tabgrid: { peer_id: `tg-wnam-${"0".repeat(32)}`, latency_budget_ms: 5_000 },
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(done.choices[0]?.message.content).toBe(UPSTREAM_TEXT.join(""));
    const sent = upstream.requests.at(-1)?.body;
    expect(sent).not.toHaveProperty("tabgrid");
    expect(sent).toMatchObject({
      model: "cloud-model",
      messages: [{ role: "user", content: "hi" }],
    });
  });

  it("non-streaming too", async () => {
    const client = new OpenAI({ baseURL: `${dev.origin}/v1`, apiKey: "unused" });
    const done = await client.chat.completions.create({
      model: "any-model",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(done.choices[0]?.message.content).toBe(UPSTREAM_TEXT.join(""));
  });
});
