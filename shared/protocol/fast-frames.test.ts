import { describe, expect, it } from "vitest";
import { fastJobDelta, parseTabFrame } from "./fast-frames.js";
import { parseFrame } from "./frames.js";
import { JobDeltaSchema, MAX_FRAME_BYTES, TabMessageSchema } from "./node-messages.js";

/** A small seeded generator (mulberry32): the fuzzed cases are the same on every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values at and around every bound of JobDeltaSchema, and of the wrong kinds. */
const STRINGS = ["", "j", "job_1", "x".repeat(64), "x".repeat(65), "é€😀", "x".repeat(64 * 1024)];
const LONG = ["x".repeat(64 * 1024 + 1), "😀".repeat(32 * 1024 + 1)];
const NUMBERS = [0, -0, 1, 7, -1, 1.5, 2 ** 53 - 1, 2 ** 53, 1e21, -1e-9];
const OTHERS = [null, true, false, [], {}, [1], { a: 1 }, "1", "0"];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function anyValue(r: () => number): unknown {
  const k = r();
  if (k < 0.35) return pick(r, STRINGS);
  if (k < 0.4) return pick(r, LONG);
  if (k < 0.8) return pick(r, NUMBERS);
  return pick(r, OTHERS);
}

/** A frame near a job.delta: each field valid most of the time, otherwise anything. */
function nearDelta(r: () => number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const field = (key: string, valid: () => unknown, pMissing: number) => {
    const k = r();
    if (k < pMissing) return;
    o[key] = k < 0.75 ? valid() : anyValue(r);
  };
  field(
    "type",
    () => (r() < 0.9 ? "job.delta" : pick(r, ["job.done", "job.deltas", "status"])),
    0.03,
  );
  field("jobId", () => pick(r, ["j", "job_abc", "x".repeat(64)]), 0.05);
  field("seq", () => Math.floor(r() * 1000), 0.05);
  field("text", () => pick(r, ["", " tok", "é€😀 ", "x".repeat(64 * 1024)]), 0.05);
  field("offset", () => Math.floor(r() * 100_000), 0.4);
  if (r() < 0.1) o[pick(r, ["extra", "chars", "__proto__", "constructor"])] = anyValue(r);
  return o;
}

// Fuzzing thousands of frames (some 64 KiB) takes seconds on a loaded machine.
describe("job.delta fast path", { timeout: 30_000 }, () => {
  it("accepts exactly what JobDeltaSchema accepts among its inputs, with the same value", () => {
    const r = rng(16);
    const named = new Set(["type", "jobId", "seq", "text", "offset"]);
    let accepted = 0;
    for (let i = 0; i < 4_000; i++) {
      // Through JSON, as frames arrive: `__proto__` becomes an own key, -0 stays -0.
      const json = JSON.parse(JSON.stringify(nearDelta(r))) as Record<string, unknown>;
      const fast = fastJobDelta(json);
      const full = JobDeltaSchema.safeParse(json);
      const where = JSON.stringify(json).slice(0, 200);
      if (fast) {
        accepted++;
        // Never accepts what the schema refuses, and gives what the schema gives.
        expect(full.success, where).toBe(true);
        expect(fast).toStrictEqual(full.data);
      } else if (full.success) {
        // Leaves to the schema only the deltas with a key the schema would strip, or a string
        // over its bound in UTF-16 units (zod counts code points past the bound: it decides).
        const extraKey = Object.keys(json).some((k) => !named.has(k));
        const long = (json.text as string).length > 64 * 1024 || (json.jobId as string).length > 64;
        expect(extraKey || long, where).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(800);
  });

  it("parseTabFrame gives parseFrame(TabMessageSchema) results on fuzzed frames", () => {
    const r = rng(11);
    for (let i = 0; i < 2_000; i++) {
      const raw = JSON.stringify(nearDelta(r));
      const fast = parseTabFrame(raw, MAX_FRAME_BYTES);
      const full = parseFrame(TabMessageSchema, raw, MAX_FRAME_BYTES);
      expect(fast, raw.slice(0, 200)).toStrictEqual(full);
    }
  });

  it("refuses every bound the schema has (falls back to it, which words the refusal)", () => {
    const ok = { type: "job.delta", jobId: "j1", seq: 0, text: "hi", offset: 2 };
    expect(fastJobDelta(ok)).toStrictEqual(ok);
    for (const bad of [
      { ...ok, jobId: "" },
      { ...ok, jobId: "x".repeat(65) },
      { ...ok, seq: -1 },
      { ...ok, seq: 1.5 },
      { ...ok, seq: 2 ** 53 },
      { ...ok, seq: "1" },
      { ...ok, offset: -1 },
      { ...ok, offset: null },
      { ...ok, text: "x".repeat(64 * 1024 + 1) },
      { ...ok, text: 5 },
      { ...ok, type: "job.done" },
      { ...ok, extra: 1 },
    ]) {
      expect(fastJobDelta(bad), JSON.stringify(bad).slice(0, 80)).toBeNull();
    }
    const r = parseTabFrame(JSON.stringify({ ...ok, seq: -1 }), MAX_FRAME_BYTES);
    expect(r).toMatchObject({ ok: false, reason: expect.stringContaining("seq") });
  });

  it("keeps the byte limit and the JSON check ahead of the fast path", () => {
    const big = `{"type":"job.delta","jobId":"j","seq":0,"text":"${"€".repeat(90_000)}"}`;
    expect(parseTabFrame(big, MAX_FRAME_BYTES)).toMatchObject({ ok: false, tooLarge: true });
    expect(parseTabFrame('{"type":"job.delta",', MAX_FRAME_BYTES)).toStrictEqual({
      ok: false,
      reason: "frame is not JSON",
    });
  });
});
