import { describe, expect, it } from "vitest";
import { ChatCompletionRequestSchema } from "./chat.js";
import { CompletionRequestSchema } from "./completions.js";
import { paramFromPath } from "./errors.js";
import { normaliseStop } from "./request-fields.js";

describe("ChatCompletionRequestSchema", () => {
  it("accepts what the openai client sends, flattening text parts and dropping unknown fields", () => {
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
    expect("frequency_penalty" in r).toBe(false);
  });

  it("refuses image parts and n > 1 instead of silently ignoring them", () => {
    const img = ChatCompletionRequestSchema.safeParse({
      model: "m",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }],
    });
    expect(img.success).toBe(false);
    const n = ChatCompletionRequestSchema.safeParse({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      n: 3,
    });
    expect(n.success).toBe(false);
    if (!n.success) expect(paramFromPath(n.error.issues[0]!.path)).toBe("n");
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
