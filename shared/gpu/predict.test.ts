import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS, type ModelRecord } from "../models/catalog.js";
import { classifyGpu } from "./classify.js";
import {
  DECODE_SHARE_OF_MEASURED,
  DECODE_SHARE_OF_PEAK,
  modelWeightBytes,
  parameterCount,
  predictDecode,
  speedCorrection,
} from "./predict.js";

function record(id: string, extra: Partial<ModelRecord> = {}): ModelRecord {
  return {
    model: `https://example.org/${id}`,
    model_id: id,
    model_lib: `https://example.org/${id}.wasm`,
    ...extra,
  };
}

describe("model size", () => {
  it("reads the parameter count from the id", () => {
    expect(parameterCount("Qwen2.5-0.5B-Instruct-q4f16_1-MLC")).toBe(0.5e9);
    expect(parameterCount("Llama-3.2-1B-Instruct-q4f32_1-MLC")).toBe(1e9);
    expect(parameterCount("SmolLM2-135M-Instruct-q0f16-MLC")).toBe(135e6);
    expect(parameterCount("gemma-2-2b-it-q4f16_1-MLC")).toBe(2e9);
    expect(parameterCount("Phi-3.5-mini-instruct-q4f16_1-MLC")).toBeNull();
  });

  it("counts bits per weight with group scales, and falls back to the VRAM need", () => {
    // 4 bits + one f32 scale per 32 weights = 5 bits.
    expect(modelWeightBytes(record("X-1B-q4f32_1-MLC"))).toBeCloseTo((1e9 * 5) / 8);
    expect(modelWeightBytes(record("X-1B-q4f16_1-MLC"))).toBeCloseTo((1e9 * 4.5) / 8);
    expect(modelWeightBytes(record("X-1B-q0f16-MLC"))).toBeCloseTo(2e9);
    expect(modelWeightBytes(record("Phi-mini-q4f16_1", { vram_required_MB: 1000 }))).toBeCloseTo(
      600 * 1024 * 1024,
    );
    expect(modelWeightBytes(record("nothing"))).toBeNull();
  });

  it("sizes every default catalog model", () => {
    for (const m of DEFAULT_MODELS) expect(modelWeightBytes(m), m.model_id).toBeGreaterThan(0);
  });
});

describe("decode prediction (memory-bound)", () => {
  const model = record("Llama-3.2-1B-Instruct-q4f16_1-MLC");
  const bytes = (1e9 * 4.5) / 8;

  it("is typical bandwidth × decode share / weight bytes without a benchmark", () => {
    const gpu = classifyGpu({ vendor: "nvidia", architecture: "ampere", description: "RTX 3060" });
    const p = predictDecode(model, gpu);
    expect(p.basis).toBe("typical bandwidth");
    expect(p.tokensPerSecond).toBeCloseTo((360e9 * DECODE_SHARE_OF_PEAK) / bytes);
    expect(p.corrected).toBe(false);
  });

  it("uses the measured bandwidth when the benchmark ran", () => {
    const gpu = classifyGpu(
      { vendor: "nvidia", architecture: "ampere", description: "RTX 3060" },
      { matmulGflops: 8000, bandwidthGBs: 250, durationMs: 3000 },
    );
    const p = predictDecode(model, gpu);
    expect(p.basis).toBe("measured bandwidth");
    expect(p.tokensPerSecond).toBeCloseTo((250e9 * DECODE_SHARE_OF_MEASURED) / bytes);
  });

  it("bigger models are predicted slower on the same GPU", () => {
    const gpu = classifyGpu({ vendor: "apple", architecture: "metal-3", description: "" });
    const small = predictDecode(record("A-1B-q4f16_1"), gpu).tokensPerSecond!;
    const big = predictDecode(record("A-8B-q4f16_1"), gpu).tokensPerSecond!;
    expect(big).toBeCloseTo(small / 8);
  });

  it("applies the correction learned from served jobs, clamped", () => {
    const gpu = classifyGpu({ vendor: "nvidia", architecture: "ampere", description: "RTX 3060" });
    const base = predictDecode(model, gpu).tokensPerSecond!;
    const c = speedCorrection(base / 2, base);
    expect(c).toBeCloseTo(0.5);
    const corrected = predictDecode(model, gpu, c);
    expect(corrected.tokensPerSecond).toBeCloseTo(base / 2);
    expect(corrected.corrected).toBe(true);
    expect(speedCorrection(1000, 1)).toBe(5);
    expect(speedCorrection(0, 10)).toBeNull();
  });

  it("predicts nothing for an unknown GPU without a benchmark", () => {
    const p = predictDecode(
      model,
      classifyGpu({ vendor: "acme", architecture: "", description: "" }),
    );
    expect(p).toMatchObject({ tokensPerSecond: null, basis: "none" });
  });
});
