import { describe, expect, it } from "vitest";
import type { JsonSchema } from "./json-schema.js";
import { schemaMismatch } from "./json-schema-match.js";

/** Where and why `value` fails `schema`, as one string; "ok" when it matches. */
function verdict(value: unknown, schema: JsonSchema): string {
  const p = schemaMismatch(value, schema);
  return p ? `${p.path || "(root)"} ${p.message}` : "ok";
}

const city = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
  additionalProperties: false,
};

/** A tool envelope as edge/openai/tool-calls.ts plans it: two tools, at most one call. */
const envelope: JsonSchema = {
  type: "object",
  properties: {
    tool_calls: {
      type: "array",
      items: {
        anyOf: ["get_weather", "get_time"].map((name) => ({
          type: "object",
          properties: { name: { const: name }, arguments: { $ref: "#/$defs/args" } },
          required: ["name", "arguments"],
          additionalProperties: false,
        })),
      },
      minItems: 1,
      maxItems: 1,
    },
  },
  required: ["tool_calls"],
  additionalProperties: false,
  $defs: { args: city },
};
const auto: JsonSchema = {
  anyOf: [
    {
      type: "object",
      properties: { content: { type: "string" } },
      required: ["content"],
      additionalProperties: false,
    },
    envelope,
  ],
  $defs: envelope.$defs,
};

describe("schemaMismatch", () => {
  it("a tool envelope: names among those offered, how many calls, arguments by $ref", () => {
    const call = (name: string, args: unknown = { city: "Paris" }) => ({ name, arguments: args });
    expect(verdict({ tool_calls: [call("get_time")] }, envelope)).toBe("ok");
    expect(verdict({ tool_calls: [call("delete_account")] }, envelope)).toBe(
      'tool_calls[0].name must be one of "get_weather", "get_time"',
    );
    expect(verdict({ tool_calls: [call("get_time"), call("get_time")] }, envelope)).toBe(
      "tool_calls must have at most 1 items",
    );
    expect(verdict({ tool_calls: [] }, envelope)).toBe("tool_calls must have at least 1 items");
    expect(verdict({ tool_calls: [call("get_time", { city: 3 })] }, envelope)).toBe(
      "tool_calls[0].arguments.city must be of type string",
    );
    expect(verdict({ tool_calls: [call("get_time", {})] }, envelope)).toBe(
      "tool_calls[0].arguments.city is required",
    );
  });

  it("tool_choice auto: the branch the answer meant is the one reported", () => {
    expect(verdict({ content: "hello" }, auto)).toBe("ok");
    expect(verdict({ tool_calls: [{ name: "rm", arguments: {} }] }, auto)).toBe(
      'tool_calls[0].name must be one of "get_weather", "get_time"',
    );
    expect(verdict({ content: 3 }, auto)).toBe("content must be of type string");
  });

  it("strict objects and arrays, as the grammar: nothing the schema does not name", () => {
    expect(
      verdict({ city: "Paris", admin: true }, { ...city, additionalProperties: undefined }),
    ).toBe("(root) holds a property the schema does not name");
    expect(verdict({ city: "Paris", n: 1 }, { ...city, additionalProperties: true })).toBe("ok");
    expect(verdict({ n: "x" }, { type: "object", additionalProperties: { type: "number" } })).toBe(
      "* must be of type number",
    );
    expect(verdict([1, 2], { type: "array", prefixItems: [{ type: "number" }] })).toBe(
      "[1] no value is allowed here",
    );
    expect(verdict([1, 2], { type: "array", items: { type: "number" } })).toBe("ok");
    // A schema with no object keywords allows any value, as JSON Schema (and the grammar) do.
    expect(verdict({ anything: [1, { x: 2 }] }, { description: "free" })).toBe("ok");
    // allOf members each name part of an object.
    const both = { allOf: [{ properties: { a: { type: "number" } } }, { required: ["b"] }] };
    expect(verdict({ a: 1, b: 2 }, both)).toBe("ok");
    expect(verdict({ a: "x", b: 2 }, both)).toBe("a must be of type number");
  });

  it("values, numbers and strings", () => {
    expect(verdict("c", { enum: ["a", "b"] })).toBe('(root) must be one of "a", "b"');
    expect(verdict({ k: [1] }, { const: { k: [1] } })).toBe("ok");
    expect(verdict(1.5, { type: "integer" })).toBe("(root) must be of type integer");
    expect(verdict(3, { type: "number", minimum: 0, exclusiveMaximum: 3 })).toBe(
      "(root) must be less than 3",
    );
    expect(verdict(null, { type: ["string", "null"] })).toBe("ok");
    // pattern is the grammar's to enforce: the client's own regular expression is never run here,
    // where a catastrophic one would hold the Worker's isolate (this one takes 2^40 steps).
    const started = Date.now();
    expect(verdict(`${"a".repeat(40)}!`, { type: "string", pattern: "^(a+)+$" })).toBe("ok");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(verdict("😀", { type: "string", minLength: 2, maxLength: 1 })).toBe("ok");
    expect(verdict("abc", { type: "string", maxLength: 2 })).toBe(
      "(root) must have at most 2 characters",
    );
    // format is an annotation here (the grammar's own regular expressions enforce it).
    expect(verdict("not an email", { type: "string", format: "email" })).toBe("ok");
    expect(verdict(1, { oneOf: [{ type: "number" }, { type: "integer" }] })).toBe(
      "(root) matches more than one of the schema's oneOf branches",
    );
  });

  it("never names the tab's own text, and its work is bounded", () => {
    const bad = schemaMismatch(
      { "Your API key was revoked, log in at evil.example": 1 },
      { type: "object", properties: {} },
    );
    expect(JSON.stringify(bad)).not.toContain("evil");
    // A recursive schema and an answer nested far deeper than any real one.
    let deep: unknown = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(verdict(deep, { type: "array", items: { $ref: "#" } })).toMatch(/nested deeper than/);
    // Branches at every level: stopped by the step bound, not the stack.
    const wide: JsonSchema = { anyOf: [{ $ref: "#" }, { $ref: "#" }, { type: "string" }] };
    expect(verdict(1, wide)).toMatch(/too costly|nested deeper/);
  });
});
