import { describe, expect, it } from "vitest";
import {
  capBenchmark,
  DECODE_TPS_MAX,
  plausibleBenchmarkMax,
  plausibleDecodeMaxTps,
} from "./plausible.js";

describe("plausible benchmark figures", () => {
  it("caps a claim of 10^12 GB/s to the fastest GPU of the claimed class, plus a margin", () => {
    const { benchmark, capped } = capBenchmark("high", null, {
      matmulGflops: 1e12,
      bandwidthGBs: 1e12,
      durationMs: 1,
    });
    expect(capped).toBe(true);
    // RTX 5090: 1792 GB/s peak.
    expect(benchmark.bandwidthGBs).toBeCloseTo(1792 * 1.25);
    expect(benchmark.matmulGflops).toBe(60_000);
  });

  it("leaves a plausible claim alone and caps by the named profile when there is one", () => {
    const ok = { matmulGflops: 3_000, bandwidthGBs: 200, durationMs: 40 };
    expect(capBenchmark("mid", null, ok)).toEqual({ benchmark: ok, capped: false });
    expect(plausibleBenchmarkMax("high", "rtx-4060").bandwidthGBs).toBeCloseTo(272 * 1.25);
    expect(plausibleBenchmarkMax("software", null).bandwidthGBs).toBeLessThan(20);
  });

  it("a tab that does not say its class gets a middle cap, not the top one", () => {
    expect(plausibleBenchmarkMax("unknown", null).bandwidthGBs).toBeLessThan(
      plausibleBenchmarkMax("high", null).bandwidthGBs,
    );
  });

  it("decode speed: at most DECODE_TPS_MAX, less where the model's weights bound it", () => {
    // 0.5B at 4.5 bits per weight: 281 MB a token, 2240 GB/s would give ~8,000 tokens/s.
    expect(plausibleDecodeMaxTps("Qwen2.5-0.5B-Instruct-q4f16_1-MLC")).toBe(DECODE_TPS_MAX);
    // 8B: 4.5 GB a token, 2240 GB/s → ~500 tokens/s; 70B at 3 bits: 30.6 GB → ~73.
    expect(plausibleDecodeMaxTps("Llama-3.1-8B-Instruct-q4f16_1-MLC")).toBeCloseTo(497.8, 0);
    expect(plausibleDecodeMaxTps("Llama-3.1-70B-Instruct-q3f16_1-MLC")).toBeCloseTo(73.1, 0);
    // A name no catalog knows (a tab may announce any): the ceiling, however small it claims to be.
    expect(plausibleDecodeMaxTps("tiny-1M-q4f16_1")).toBe(DECODE_TPS_MAX);
  });
});
