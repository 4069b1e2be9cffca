import { describe, expect, it, afterEach } from "vitest";
import { ChatCompletionChunkSchema } from "../../shared/openai/chat.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { readSse } from "../../test/workerd/sse.js";
import { post } from "../../test/workerd/tab-helpers.js";

/**
 * What clients rely on at the end of a stream (the Vercel AI SDK treats a stream without
 * finish_reason as an error): every choice ends with exactly one finish_reason chunk, and with
 * `stream_options.include_usage` the last chunk before [DONE] is the usage (choices: []) — for
 * text, JSON, tool calls, a cut-off answer, and n > 1.
 */
const tabs: EngineTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("every stream ends with a finish_reason per choice, then the usage chunk", () => {
  it.each([
    ["text", {}, ["stop"]],
    ["JSON", { response_format: { type: "json_object" } }, ["stop"]],
    ["a tool call", { tools: [weather], tool_choice: "required" }, ["tool_calls"]],
    ["an answer cut by max_completion_tokens", { max_completion_tokens: 2 }, ["length"]],
    ["n = 2", { n: 2 }, ["stop", "stop"]],
    ["n = 2 with logprobs", { n: 2, logprobs: true }, ["stop", "stop"]],
  ])("%s", async (_name, extra, finishes) => {
    const model = `end-${tabs.length}-${Math.random().toString(36).slice(2, 8)}`;
    tabs.push(await EngineTab.connect(model), await EngineTab.connect(model));
    const res = await post("/chat/completions", {
      model,
      messages: [{ role: "user", content: "say something" }],
      stream: true,
      stream_options: { include_usage: true },
      ...extra,
    });
    expect(res.status).toBe(200);
    const data = await readSse(res);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => ChatCompletionChunkSchema.parse(JSON.parse(d)));
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage?.completion_tokens).toBeGreaterThan(0);
    // No chunk after a choice's finish_reason carries that choice again.
    const seen = new Map<number, string>();
    for (const c of chunks.slice(0, -1))
      for (const choice of c.choices) {
        expect(seen.has(choice.index)).toBe(false);
        if (choice.finish_reason) seen.set(choice.index, choice.finish_reason);
      }
    expect([...seen.entries()].sort().map(([, f]) => f)).toEqual(finishes);
    // Only the usage chunk has usage; one response id throughout.
    expect(chunks.slice(0, -1).every((c) => c.usage == null)).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });
});
