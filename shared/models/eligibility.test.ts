import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS, type ModelRecord } from "./catalog.js";
import {
  classifyCatalog,
  classifyModel,
  defaultModel,
  type GpuCapabilities,
} from "./eligibility.js";

const swiftshader: GpuCapabilities = {
  shaderF16: false,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxBufferSize: 256 * 1024 * 1024,
};
const bigGpu: GpuCapabilities = {
  shaderF16: true,
  maxStorageBufferBindingSize: 2 * 1024 * 1024 * 1024,
  maxBufferSize: 4 * 1024 * 1024 * 1024,
};

function record(id: string, extra: Partial<ModelRecord> = {}): ModelRecord {
  return {
    model: `https://example.org/${id}`,
    model_id: id,
    model_lib: `https://example.org/${id}.wasm`,
    ...extra,
  };
}

describe("classifyModel", () => {
  it("excludes f16 models on a GPU without shader-f16, with a reason", () => {
    const e = classifyModel(record("Tiny-q4f16_1-MLC"), swiftshader);
    expect(e).toMatchObject({ eligible: false, reason: "needs_shader_f16" });
  });

  it("excludes models that declare shader-f16 in required_features", () => {
    const e = classifyModel(
      record("Odd-q4f32_1", { required_features: ["shader-f16"] }),
      swiftshader,
    );
    expect(e.eligible).toBe(false);
  });

  it("excludes models whose buffers exceed maxStorageBufferBindingSize", () => {
    const e = classifyModel(
      record("Big-q4f32_1-MLC", { buffer_size_required_bytes: 262_144_000 }),
      swiftshader,
    );
    expect(e).toMatchObject({ eligible: false, reason: "buffer_too_small" });
    if (!e.eligible) expect(e.detail).toContain("128 MiB");
  });

  it("accepts f16 models when the GPU has shader-f16 and marks low-resource ones recommended", () => {
    const e = classifyModel(record("Tiny-q4f16_1-MLC", { low_resource_required: true }), bigGpu);
    expect(e).toMatchObject({ eligible: true, recommended: true });
  });
});

describe("classifyCatalog", () => {
  it("puts eligible models first, recommended and q4f32 ahead, excluded ones last", () => {
    const catalog = [
      record("A-q4f16_1-MLC", { low_resource_required: true, vram_required_MB: 500 }),
      record("B-q4f32_1-MLC", { vram_required_MB: 900 }),
      record("C-q4f32_1-MLC", { low_resource_required: true, vram_required_MB: 1200 }),
      record("D-q4f32_1-MLC", { low_resource_required: true, vram_required_MB: 800 }),
    ];
    const ids = classifyCatalog(catalog, swiftshader).map((e) => [e.model.model_id, e.eligible]);
    expect(ids).toEqual([
      ["D-q4f32_1-MLC", true],
      ["C-q4f32_1-MLC", true],
      ["B-q4f32_1-MLC", true],
      ["A-q4f16_1-MLC", false],
    ]);
  });

  it("on SwiftShader, the default catalog still offers a recommended q4f32 model", () => {
    const classified = classifyCatalog(DEFAULT_MODELS, swiftshader);
    const first = defaultModel(classified);
    expect(first?.model_id).toMatch(/q4f32/);
    expect(classified.some((e) => !e.eligible && e.reason === "needs_shader_f16")).toBe(true);
  });

  it("has no default when nothing is eligible", () => {
    expect(defaultModel(classifyCatalog([record("X-q4f16_1-MLC")], swiftshader))).toBeUndefined();
  });
});

describe("memory from the GPU profile", () => {
  it("excludes models above the usable share of the typical memory, naming the profile", () => {
    const gpu: GpuCapabilities = { ...bigGpu, usableMemoryMB: 4000, profileName: "RTX 2060" };
    const big = classifyModel(record("Big-8B-q4f16_1", { vram_required_MB: 6000 }), gpu);
    expect(big).toMatchObject({ eligible: false, reason: "insufficient_vram" });
    expect(big.eligible ? "" : big.detail).toMatch(/typical RTX 2060/);
    expect(classifyModel(record("Small-q4f16_1", { vram_required_MB: 900 }), gpu).eligible).toBe(
      true,
    );
  });

  it("excludes nothing for memory when the memory is unknown", () => {
    const e = classifyModel(record("Big-q4f32_1", { vram_required_MB: 60000 }), {
      ...swiftshader,
      usableMemoryMB: null,
    });
    expect(e.eligible).toBe(true);
  });
});
