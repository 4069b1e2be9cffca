import { describe, expect, it } from "vitest";
import { formatRate } from "./format.js";

describe("formatRate", () => {
  it("never shows a small measured rate as zero", () => {
    expect(formatRate(0.031, "G", "FLOP/s")).toBe("31.0 MFLOP/s");
    expect(formatRate(0.0009, "G", "FLOP/s")).toBe("900 kFLOP/s");
    expect(formatRate(1.46, "G", "B/s")).toBe("1.46 GB/s");
    expect(formatRate(250.4, "G", "FLOP/s")).toBe("250 GFLOP/s");
    expect(formatRate(0, "G", "FLOP/s")).toBe("0 GFLOP/s");
  });
});
