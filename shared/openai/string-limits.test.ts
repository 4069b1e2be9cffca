import { describe, expect, it } from "vitest";
import { ChatCompletionRequestSchema } from "./chat.js";
import { CompletionRequestSchema } from "./completions.js";
import { paramFromPath } from "./errors.js";
import {
  MAX_DESCRIPTION_BYTES,
  MAX_LOGIT_BIAS,
  MAX_NAME_BYTES,
  MAX_SCHEMA_BYTES,
  MAX_SCHEMA_DEPTH,
  MAX_STOP_BYTES,
  MAX_USER_BYTES,
  jsonDepth,
} from "./string-limits.js";

const base = { model: "m", messages: [{ role: "user", content: "hi" }] };

/** The `param` a 400 would name, or null when the body is accepted. */
function refusedParam(body: Record<string, unknown>, schema = ChatCompletionRequestSchema) {
  const r = schema.safeParse(body);
  return r.success ? null : paramFromPath(r.error.issues[0]!.path);
}

const fn = (extra: Record<string, unknown> = {}) => ({
  type: "function",
  function: { name: "lookup", ...extra },
});

/** A schema of `n` nested object properties. */
function nested(n: number): Record<string, unknown> {
  let s: Record<string, unknown> = { type: "string" };
  for (let i = 0; i < n; i++) s = { type: "object", properties: { a: s } };
  return s;
}

describe("limits on every string a client sends", () => {
  it("stop: 4 sequences of at most 256 bytes each (4 × 225,000 characters are refused)", () => {
    const huge = "x".repeat(225_000);
    expect(refusedParam({ ...base, stop: [huge, huge, huge, huge] })).toBe("stop[0]");
    expect(refusedParam({ ...base, stop: huge })).toBe("stop");
    expect(refusedParam({ ...base, stop: ["a", "b", "€".repeat(86)] })).toBe("stop[2]");
    expect(refusedParam({ ...base, stop: ["a", "b", "c", "d", "e"] })).toBe("stop");
    expect(refusedParam({ ...base, stop: ["</s>", "x".repeat(MAX_STOP_BYTES)] })).toBeNull();
    expect(
      refusedParam(
        { prompt: "p", model: "m", stop: "y".repeat(1000) },
        CompletionRequestSchema as never,
      ),
    ).toBe("stop");
  });

  it("message name, user and safety_identifier are bounded in bytes", () => {
    const named = (name: string) => ({
      ...base,
      messages: [{ role: "user", content: "hi", name }],
    });
    expect(refusedParam(named("n".repeat(MAX_NAME_BYTES)))).toBeNull();
    expect(refusedParam(named("€".repeat(22)))).toBe("messages[0].name");
    expect(refusedParam({ ...base, user: "u".repeat(MAX_USER_BYTES + 1) })).toBe("user");
    expect(refusedParam({ ...base, safety_identifier: "€".repeat(100) })).toBe("safety_identifier");
    expect(refusedParam({ ...base, model: "m".repeat(300) })).toBe("model");
  });

  it("tool descriptions, names and JSON schemas are bounded", () => {
    expect(
      refusedParam({
        ...base,
        tools: [fn({ description: "d".repeat(MAX_DESCRIPTION_BYTES + 1) })],
      }),
    ).toBe("tools[0].function.description");
    const bigSchema = {
      type: "object",
      properties: { a: { type: "string", description: "x".repeat(MAX_SCHEMA_BYTES) } },
    };
    expect(refusedParam({ ...base, tools: [fn({ parameters: bigSchema })] })).toBe(
      "tools[0].function.parameters",
    );
    expect(refusedParam({ ...base, tools: [fn({ parameters: nested(MAX_SCHEMA_DEPTH) })] })).toBe(
      "tools[0].function.parameters",
    );
    expect(refusedParam({ ...base, tools: [fn({ parameters: nested(5) })] })).toBeNull();
    expect(
      refusedParam({
        ...base,
        response_format: {
          type: "json_schema",
          json_schema: { name: "out", schema: bigSchema },
        },
      }),
    ).toBe("response_format.json_schema.schema");
    expect(
      refusedParam({
        ...base,
        response_format: {
          type: "json_schema",
          json_schema: { name: "out", description: "d".repeat(MAX_DESCRIPTION_BYTES + 1) },
        },
      }),
    ).toBe("response_format.json_schema.description");
    expect(
      refusedParam({
        ...base,
        tools: [fn()],
        tool_choice: { type: "function", function: { name: "x".repeat(10_000) } },
      }),
    ).toBe("tool_choice.function.name");
  });

  it("logit_bias names at most 1024 tokens", () => {
    const bias = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`${i}`, 1]));
    expect(refusedParam({ ...base, logit_bias: bias(MAX_LOGIT_BIAS) })).toBeNull();
    expect(refusedParam({ ...base, logit_bias: bias(MAX_LOGIT_BIAS + 1) })).toBe("logit_bias");
  });

  it("measures schema depth without recursion", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(jsonDepth(deep, 40)).toBeGreaterThan(40);
    expect(jsonDepth({ a: [1, { b: 2 }] }, 40)).toBe(3);
  });
});
