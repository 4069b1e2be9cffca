import { describe, expect, it } from "vitest";
import { capBenchmark, plausibleBenchmarkMax } from "./plausible.js";

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
});
