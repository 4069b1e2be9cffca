import { describe, expect, it } from "vitest";
import { ChatCompletionRequestSchema } from "./chat.js";
import { CompletionRequestSchema } from "./completions.js";
import { paramFromPath } from "./errors.js";
import { MAX_CHOICES, normaliseStop } from "./request-fields.js";

describe("ChatCompletionRequestSchema", () => {
  it("accepts what the openai client sends, flattening text parts and keeping every field", () => {
    const r = ChatCompletionRequestSchema.parse({
      model: "m",
      messages: [
        { role: "developer", content: "be brief" },
        {
          role: "user",
          content: [
            { type: "text", text: "a" },
            { type: "text", text: "b" },
          ],
        },
      ],
      stream: true,
      stream_options: { include_usage: true },
      frequency_penalty: 0,
    });
    expect(r.messages[1]?.content).toBe("ab");
    expect(r.frequency_penalty).toBe(0);
  });

  it("refuses image parts and n above MAX_CHOICES instead of silently ignoring them", () => {
    const img = ChatCompletionRequestSchema.safeParse({
      model: "m",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }],
    });
    expect(img.success).toBe(false);
    const n = ChatCompletionRequestSchema.safeParse({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      n: MAX_CHOICES + 1,
    });
    expect(n.success).toBe(false);
    if (!n.success) expect(paramFromPath(n.error.issues[0]!.path)).toBe("n");
  });
});

const base = { model: "m", messages: [{ role: "user", content: "x" }] };
const paramOf = (body: object) => {
  const r = ChatCompletionRequestSchema.safeParse(body);
  return r.success ? "accepted" : paramFromPath(r.error.issues[0]!.path);
};

describe("no silent drops", () => {
  it.each([
    [{ ...base, frobnicate: 1 }, "frobnicate"],
    [{ ...base, tabgrid: { latency_budget_ms: 5, extra: 1 } }, "tabgrid.extra"],
    [{ ...base, logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    [{ ...base, top_logprobs: 3 }, "top_logprobs"],
    [{ ...base, store: true }, "store"],
    [{ ...base, metadata: { a: "b" } }, "metadata"],
    [{ ...base, audio: { voice: "x" } }, "audio"],
    [{ ...base, functions: [] }, "functions"],
    [{ ...base, stream_options: { include_usage: true } }, "stream_options"],
    [{ ...base, messages: [{ role: "user", content: "x", extra: 1 }] }, "messages[0].extra"],
    [
      {
        ...base,
        response_format: {
          type: "json_schema",
          json_schema: { name: "a", schema: { type: "object", not: {} } },
        },
      },
      "response_format.json_schema.schema.not",
    ],
    [
      {
        ...base,
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "a",
            schema: { type: "object", properties: { a: { type: "string", if: {} } } },
          },
        },
      },
      "response_format.json_schema.schema.properties.a.if",
    ],
    [
      {
        ...base,
        tools: [
          {
            type: "function",
            function: { name: "f", parameters: { type: "object", patternProperties: {} } },
          },
        ],
      },
      "tools[0].function.parameters.patternProperties",
    ],
    [{ ...base, tool_choice: "required" }, "tool_choice"],
    [
      {
        ...base,
        tools: [{ type: "function", function: { name: "f" } }],
        tool_choice: { type: "function", function: { name: "g" } },
      },
      "tool_choice.function.name",
    ],
  ])("%j -> 400 naming %s", (body, param) => {
    expect(paramOf(body)).toBe(param);
  });

  it.each([
    { ...base, logprobs: false, n: 1, store: false, service_tier: "auto", user: "u" },
    { ...base, presence_penalty: 1, frequency_penalty: -1, logit_bias: { "42": -100 } },
    { ...base, stream: true, stream_options: { include_usage: true } },
    { ...base, response_format: { type: "json_object" } },
    {
      ...base,
      messages: [
        { role: "user", content: "x" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "c1", content: "42" },
      ],
      tools: [
        {
          type: "function",
          function: { name: "f", parameters: { type: "object", properties: {} } },
        },
      ],
      tool_choice: "auto",
      parallel_tool_calls: false,
    },
  ])("accepts %j", (body) => {
    expect(paramOf(body)).toBe("accepted");
  });
});

describe("CompletionRequestSchema", () => {
  it("accepts a one-element prompt array and refuses batches", () => {
    expect(CompletionRequestSchema.parse({ model: "m", prompt: ["x"] }).prompt).toBe("x");
    expect(CompletionRequestSchema.safeParse({ model: "m", prompt: ["x", "y"] }).success).toBe(
      false,
    );
  });
});

describe("helpers", () => {
  it("paramFromPath uses OpenAI's notation", () => {
    expect(paramFromPath(["messages", 0, "content"])).toBe("messages[0].content");
    expect(paramFromPath([])).toBeNull();
  });
  it("normaliseStop turns a string into a list and drops empty lists", () => {
    expect(normaliseStop("x")).toEqual(["x"]);
    expect(normaliseStop([])).toBeUndefined();
    expect(normaliseStop(null)).toBeUndefined();
  });
});
