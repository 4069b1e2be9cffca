import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";

/**
 * Limits on strings a client sends (shared/openai/string-limits.ts), through the real API in
 * workerd: each is a 400 naming the field, before any job exists or a tab sees anything.
 */
async function chat(body: Record<string, unknown>) {
  const res = await SELF.fetch("http://tabgrid.test/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", "cf-connecting-ip": "198.51.100.61" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], ...body }),
  });
  return { status: res.status, error: OpenAIErrorBodySchema.parse(await res.json()).error };
}

describe("API string limits", () => {
  it.each([
    [
      "4 stop strings of 225,000 characters",
      { stop: Array(4).fill("x".repeat(225_000)) },
      "stop[0]",
    ],
    [
      "a message name of 1,000 bytes",
      { messages: [{ role: "user", content: "hi", name: "€".repeat(334) }] },
      "messages[0].name",
    ],
    ["a user of 10,000 characters", { user: "u".repeat(10_000) }, "user"],
    [
      "a tool schema of 40 KB",
      {
        tools: [
          {
            type: "function",
            function: {
              name: "f",
              parameters: {
                type: "object",
                properties: { a: { type: "string", description: "d".repeat(40_000) } },
              },
            },
          },
        ],
      },
      "tools[0].function.parameters",
    ],
    [
      "a tool description of 100,000 characters",
      { tools: [{ type: "function", function: { name: "f", description: "d".repeat(100_000) } }] },
      "tools[0].function.description",
    ],
  ])("refuses %s with 400 naming the field", async (_name, body, param) => {
    const { status, error } = await chat(body);
    expect(status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toMatch(/bytes|nest/);
  });
});
