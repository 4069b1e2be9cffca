import { describe, expect, it } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { EngineError } from "../engine/inference-engine.js";
import { smallerThan, startWithFallback } from "./load-fallback.js";

const rec = (id: string, vram: number): ModelRecord => ({
  model: `https://example.org/${id}`,
  model_id: id,
  model_lib: `https://example.org/${id}.wasm`,
  vram_required_MB: vram,
});
const big = rec("Big-8B-q4f32_1", 6000);
const mid = rec("Mid-3B-q4f32_1", 3000);
const small = rec("Small-1B-q4f32_1", 1100);

describe("out-of-memory fallback", () => {
  it("picks the largest model that needs less memory", () => {
    expect(smallerThan(big, [small, big, mid])?.model_id).toBe(mid.model_id);
    expect(smallerThan(small, [small, big, mid])).toBeUndefined();
  });

  it("falls back step by step with a message, and returns what loaded", async () => {
    const tried: string[] = [];
    const messages: string[] = [];
    const loaded = await startWithFallback(
      big,
      [big, mid, small],
      async (m) => {
        tried.push(m.model_id);
        if (m !== small) throw new EngineError("out_of_memory", "The GPU ran out of memory.");
      },
      (m) => messages.push(m),
    );
    expect(loaded).toBe(small);
    expect(tried).toEqual([big.model_id, mid.model_id, small.model_id]);
    expect(messages[0]).toMatch(/Big-8B.*did not fit.*trying the smaller Mid-3B/);
  });

  it("rethrows other failures at once", async () => {
    const err = new EngineError("load_failed", "network");
    await expect(
      startWithFallback(
        big,
        [big, small],
        async () => Promise.reject(err),
        () => {},
      ),
    ).rejects.toBe(err);
  });
});
