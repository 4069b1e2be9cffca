import { describe, expect, it } from "vitest";
import { CoordinatorMessageSchema, TabMessageSchema, parseFrame } from "./node-messages.js";

const adapter = {
  vendor: "google",
  architecture: "swiftshader",
  description: "",
  shaderF16: false,
  maxBufferSize: 1,
  maxStorageBufferBindingSize: 1,
};

/** A valid hello frame, parsed, with `over`'s fields in place of its own. */
const hello = (over: object = {}) =>
  parseFrame(
    TabMessageSchema,
    JSON.stringify({
      type: "hello",
      protocol: 1,
      adapter,
      models: ["m"],
      state: "idle",
      agent: "a",
      ...over,
    }),
  );

describe("parseFrame", () => {
  it("parses a valid hello", () => {
    const r = hello();
    expect(r.ok && r.msg.type).toBe("hello");
  });

  it("takes only model ids as model names, in hello and status", () => {
    const status = (models: string[]) =>
      parseFrame(TabMessageSchema, JSON.stringify({ type: "status", state: "idle", models }));
    // WebLLM's ids, the fixture's, an operator's, the made-up names of the tests and benches.
    for (const ok of [
      "Qwen2-0.5B-Instruct-q4f16_1-MLC",
      "Qwen2-0.5B-Fixture-q4f32_1-MLC",
      "snowflake-arctic-embed-m-q0f32-MLC-b4",
      "m",
      "x".repeat(200),
    ]) {
      expect(hello({ models: [ok] }).ok, ok).toBe(true);
      expect(status([ok]).ok, ok).toBe(true);
    }
    for (const bad of [
      'mnc-x"><img src=x onerror=alert(1)>',
      "model\u202e",
      "line\nbreak",
      "nul\u0000",
      "with space",
      "org/model",
      "-leading-dash",
      "x".repeat(201),
      "",
    ]) {
      const r = hello({ models: ["good-model", bad] });
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/^models\.1: /);
      expect(status([bad]).ok, bad).toBe(false);
    }
  });

  it("takes adapter strings and the agent without control or bidi characters", () => {
    // What browsers report: ANGLE's strings, registered and trade marks.
    const angle = "ANGLE (NVIDIA, NVIDIA GeForce RTX 4090 (0x00002684) Direct3D11 vs_5_0 ps_5_0)";
    expect(hello({ adapter: { ...adapter, description: angle } }).ok).toBe(true);
    expect(hello({ adapter: { ...adapter, vendor: "Intel(R) Arc™" } }).ok).toBe(true);
    for (const bad of [
      "\u202eevil",
      "a\u2066b",
      "new\nline",
      "nul\u0000",
      "del\u007f",
      "c1\u0085",
    ]) {
      expect(hello({ adapter: { ...adapter, description: bad } }).ok, bad).toBe(false);
      expect(hello({ adapter: { ...adapter, vendor: bad } }).ok, bad).toBe(false);
      expect(hello({ agent: bad }).ok, bad).toBe(false);
    }
  });

  it("names the field that is wrong, within the close-reason limit", () => {
    const r = parseFrame(
      TabMessageSchema,
      JSON.stringify({ type: "job.delta", jobId: "j", seq: -1, text: "x" }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toMatch(/^seq: /);
      expect(new TextEncoder().encode(r.reason).length).toBeLessThanOrEqual(123);
    }
  });

  it("rejects non-JSON, binary frames and unknown types", () => {
    expect(parseFrame(TabMessageSchema, "{").ok).toBe(false);
    expect(parseFrame(TabMessageSchema, new ArrayBuffer(2)).ok).toBe(false);
    expect(
      parseFrame(
        TabMessageSchema,
        JSON.stringify({ type: "welcome", protocol: 1, nodeId: "x", statusIntervalMs: 1 }),
      ).ok,
    ).toBe(false);
  });

  it("keeps directions apart: a tab cannot send a coordinator message and vice versa", () => {
    const assign = {
      type: "job.assign",
      job: {
        id: "j",
        model: "m",
        input: { kind: "completion", prompt: "p" },
        sampling: { max_tokens: 1 },
      },
      attempt: 1,
    };
    expect(parseFrame(CoordinatorMessageSchema, JSON.stringify(assign)).ok).toBe(true);
    expect(parseFrame(TabMessageSchema, JSON.stringify(assign)).ok).toBe(false);
  });
});
