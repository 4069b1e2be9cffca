import { SELF } from "cloudflare:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { embed, embedMany, generateObject, generateText, jsonSchema, streamText, tool } from "ai";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { embeddingOf } from "../../test/support/deterministic-engine.js";
import { EngineTab } from "../../test/workerd/api-tab.js";

/**
 * The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`), pointed at Tabgrid by base URL only
 * (its fetch reaches the coordinator in workerd), against tabs running the deterministic engine,
 * which follows the job's JSON constraint as WebLLM's grammar would.
 */
const tabgrid = createOpenAICompatible({
  name: "tabgrid",
  baseURL: "http://tabgrid.test/v1",
  apiKey: "unused-locally",
  includeUsage: true,
  supportsStructuredOutputs: true,
  fetch: (url, init) => SELF.fetch(url as string, init as RequestInit),
});

const tabs: EngineTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));
async function serving(model: string): Promise<EngineTab> {
  const t = await EngineTab.connect(model);
  tabs.push(t);
  return t;
}

const weather = tool({
  description: "Current weather in a city",
  inputSchema: jsonSchema<{ city: string }>({
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  }),
});

describe("Vercel AI SDK (openai-compatible) against Tabgrid", () => {
  it("generateText answers text with usage and finish reason", async () => {
    await serving("ai-text");
    const result = await generateText({
      model: tabgrid.chatModel("ai-text"),
      prompt: "hello there",
      maxRetries: 0,
    });
    expect(result.text).toBe("You said: hello there");
    expect(result.finishReason).toBe("stop");
    expect(result.usage.outputTokens).toBe(4);
  });

  it("generateText with tools: the model calls one, with id and parsed input", async () => {
    await serving("ai-tools");
    const result = await generateText({
      model: tabgrid.chatModel("ai-tools"),
      prompt: "Weather in Paris? call get_weather",
      tools: { get_weather: weather },
      maxRetries: 0,
    });
    expect(result.finishReason).toBe("tool-calls");
    expect(result.toolCalls).toHaveLength(1);
    expect(result.toolCalls[0]).toMatchObject({ toolName: "get_weather", input: { city: "city" } });
    expect(result.toolCalls[0]?.toolCallId).toMatch(/^call_/);
  });

  it("streamText with tools: the stream carries the call and ends with a finish reason", async () => {
    await serving("ai-stream-tools");
    const result = streamText({
      model: tabgrid.chatModel("ai-stream-tools"),
      prompt: "call get_weather please",
      tools: { get_weather: weather },
      maxRetries: 0,
    });
    const parts: string[] = [];
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (part.type === "error") throw part.error;
    }
    expect(parts).toContain("tool-call");
    expect(await result.finishReason).toBe("tool-calls");
    const calls = await result.toolCalls;
    expect(calls[0]).toMatchObject({ toolName: "get_weather", input: { city: "city" } });
    expect((await result.usage).outputTokens).toBeGreaterThan(0);
  });

  it("streamText with text streams the words and ends with stop", async () => {
    await serving("ai-stream-text");
    const result = streamText({
      model: tabgrid.chatModel("ai-stream-text"),
      prompt: "one two three",
      maxRetries: 0,
    });
    const pieces: string[] = [];
    for await (const t of result.textStream) pieces.push(t);
    expect(pieces.join("")).toBe("You said: one two three");
    expect(pieces.length).toBeGreaterThan(1);
    expect(await result.finishReason).toBe("stop");
    expect((await result.usage).outputTokens).toBe(5);
  });

  it("generateObject answers an object following the zod schema", async () => {
    const tab = await serving("ai-object");
    const result = await generateObject({
      model: tabgrid.chatModel("ai-object"),
      schema: z.object({ name: z.string(), age: z.number().int().min(18) }),
      prompt: "Describe a person",
      maxRetries: 0,
    });
    expect(result.object).toEqual({ name: "name", age: 18 });
    expect(tab.jobs[0]?.sampling.constraint?.kind).toBe("json");
  });

  it("embed and embedMany answer the embedding model's vectors, in order, with usage", async () => {
    // WebLLM's snowflake-arctic-embed-s: 384 values per vector.
    const model = "snowflake-arctic-embed-s-q0f32-MLC-b4";
    const tab = await serving(model);
    const one = await embed({
      model: tabgrid.embeddingModel(model),
      value: "a question",
      maxRetries: 0,
    });
    expect(one.embedding).toEqual(Array.from(embeddingOf("a question", 384)));
    expect(one.usage.tokens).toBeGreaterThan(0);
    const many = await embedMany({
      model: tabgrid.embeddingModel(model),
      values: ["first document", "second document", "third"],
      maxRetries: 0,
    });
    expect(many.embeddings).toEqual(
      ["first document", "second document", "third"].map((t) => Array.from(embeddingOf(t, 384))),
    );
    expect(tab.jobs.map((j) => j.input.kind)).toEqual(["embedding", "embedding"]);
  });
});
