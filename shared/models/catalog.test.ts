import { describe, expect, it } from "vitest";
import { prebuiltAppConfig } from "@mlc-ai/web-llm";
import { fromWebLLMRecord } from "../../scripts/catalog-record.mjs";
import { buildCatalog, DEFAULT_MODELS, needsShaderF16, parseExtraModels } from "./catalog.js";

describe("model catalog", () => {
  it("defaults are WebLLM's prebuilt LLMs and embedding models (regenerate with scripts/gen-catalog.mjs after an upgrade)", () => {
    const expected = prebuiltAppConfig.model_list
      .filter((r) => r.model_type === undefined || r.model_type === 0 || r.model_type === 1)
      .map(fromWebLLMRecord);
    expect(DEFAULT_MODELS).toEqual(expected);
  });

  it("operator records are added, and replace defaults with the same id", () => {
    const first = DEFAULT_MODELS[0]!;
    const extra = parseExtraModels(
      JSON.stringify([
        { ...first, vram_required_MB: 1 },
        { model: "https://m.example/x", model_id: "x", model_lib: "https://m.example/x.wasm" },
      ]),
    );
    expect(extra.ok).toBe(true);
    if (!extra.ok) return;
    const merged = buildCatalog(DEFAULT_MODELS, extra.records);
    expect(merged).toHaveLength(DEFAULT_MODELS.length + 1);
    expect(merged.find((r) => r.model_id === first.model_id)?.vram_required_MB).toBe(1);
  });

  it("reports bad operator configuration instead of dropping it", () => {
    expect(parseExtraModels("[{")).toEqual({ ok: false, error: "EXTRA_MODELS is not valid JSON" });
    const bad = parseExtraModels(JSON.stringify([{ model_id: "x" }]));
    expect(bad.ok).toBe(false);
    expect(parseExtraModels("")).toEqual({ ok: true, records: [] });
  });

  it("knows which builds need shader-f16", () => {
    const f16 = DEFAULT_MODELS.find((r) => r.model_id === "Qwen2.5-0.5B-Instruct-q4f16_1-MLC")!;
    const f32 = DEFAULT_MODELS.find((r) => r.model_id === "Qwen2.5-0.5B-Instruct-q4f32_1-MLC")!;
    expect(needsShaderF16(f16)).toBe(true);
    expect(needsShaderF16(f32)).toBe(false);
  });
});
