import { describe, expect, it } from "vitest";
import { classifyGpu, classFromBandwidth, MEASURED_SHARE_OF_PEAK } from "./classify.js";
import { GPU_PROFILES, matchProfile } from "./profiles.js";

const info = (vendor: string, architecture: string, description = "") => ({
  vendor,
  architecture,
  description,
});

describe("GPU profiles", () => {
  it.each([
    [info("nvidia", "ampere", "NVIDIA GeForce RTX 3060"), "rtx-3060"],
    [info("nvidia", "ampere", "NVIDIA GeForce RTX 3060 Ti"), "rtx-3060-ti"],
    [info("nvidia", "lovelace", "NVIDIA GeForce RTX 4090"), "rtx-4090"],
    [info("nvidia", "blackwell", "NVIDIA GeForce RTX 5070 Ti"), "rtx-5070-ti"],
    [info("nvidia", "turing", ""), "nv-turing"],
    [info("amd", "rdna-3", "AMD Radeon RX 7900 XTX"), "rx-7900-xtx"],
    [info("amd", "rdna-2", ""), "amd-rdna2"],
    [info("amd", "rdna-3", "AMD Radeon(TM) Graphics"), "amd-igpu"],
    [info("intel", "xe-hpg", "Intel(R) Arc(TM) A770 Graphics"), "arc-a770"],
    [info("intel", "gen-12lp", ""), "intel-xe"],
    [info("intel", "gen-9", ""), "intel-uhd"],
    [info("apple", "metal-3", ""), "apple"],
    [info("apple", "metal-3", "Apple M3 Max"), "m-max"],
    [info("qualcomm", "adreno-7xx", ""), "adreno"],
    [info("arm", "valhall", ""), "mali"],
    [info("google", "swiftshader", "SwiftShader Device (Subzero)"), "swiftshader"],
  ])("matches %o to %s", (adapter, id) => {
    expect(matchProfile(adapter)?.id).toBe(id);
  });

  it("has positive, plausible figures in every row and unique ids", () => {
    const ids = new Set(GPU_PROFILES.map((p) => p.id));
    expect(ids.size).toBe(GPU_PROFILES.length);
    for (const p of GPU_PROFILES) {
      expect(p.bandwidthGBs).toBeGreaterThan(0);
      expect(p.bandwidthGBs).toBeLessThan(5000);
      if (p.memoryGB !== null) expect(p.memoryGB).toBeGreaterThan(0);
    }
  });
});

describe("classifyGpu", () => {
  it("classes discrete GPUs by their typical bandwidth", () => {
    expect(classifyGpu(info("nvidia", "lovelace", "RTX 4090")).class).toBe("high");
    expect(classifyGpu(info("nvidia", "ampere", "RTX 3060")).class).toBe("mid");
    expect(classifyGpu(info("nvidia", "ampere", "RTX 3050")).class).toBe("entry");
    expect(classifyGpu(info("intel", "gen-12lp", "")).class).toBe("integrated");
    expect(classifyGpu(info("arm", "valhall", "")).class).toBe("mobile");
  });

  it("classes SwiftShader and any fallback adapter as software, with no usable memory figure", () => {
    const sw = classifyGpu(info("google", "swiftshader"));
    expect(sw).toMatchObject({ class: "software", kind: "software", usableMemoryMB: null });
    expect(classifyGpu({ ...info("", ""), isFallbackAdapter: true }).class).toBe("software");
  });

  it("gives usable memory as a share of the typical figure (unified memory keeps less)", () => {
    expect(classifyGpu(info("nvidia", "ampere", "RTX 3060")).usableMemoryMB).toBe(
      Math.round(12 * 1024 * 0.9),
    );
    expect(classifyGpu(info("apple", "metal-3", "Apple M1")).usableMemoryMB).toBe(
      Math.round(8 * 1024 * 0.65),
    );
  });

  it("classes an unknown GPU from the measured bandwidth, and says so", () => {
    const none = classifyGpu(info("acme", "x"));
    expect(none.class).toBe("unknown");
    const measured = classifyGpu(info("acme", "x"), {
      matmulGflops: 5000,
      bandwidthGBs: 300,
      durationMs: 3000,
    });
    expect(measured.bandwidthSource).toBe("measured");
    expect(measured.bandwidthGBs).toBeCloseTo(300 / MEASURED_SHARE_OF_PEAK);
    expect(measured.class).toBe("mid");
    expect(measured.notes.join(" ")).toMatch(/measured/);
  });

  it("lets a measurement far below the profile downgrade the class (laptop part, throttling)", () => {
    const laptop = classifyGpu(info("nvidia", "lovelace", "RTX 4090 Laptop"), {
      matmulGflops: 2000,
      bandwidthGBs: 200,
      durationMs: 3000,
    });
    expect(laptop.class).toBe("mid");
    expect(laptop.notes.join(" ")).toMatch(/well below/);
    // A measurement close to the profile keeps the profile's figure.
    const desktop = classifyGpu(info("nvidia", "lovelace", "RTX 4090"), {
      matmulGflops: 40000,
      bandwidthGBs: 700,
      durationMs: 3000,
    });
    expect(desktop).toMatchObject({
      class: "high",
      bandwidthSource: "profile",
      bandwidthGBs: 1008,
    });
  });

  it("tiers bandwidth with discrete GPUs never below entry", () => {
    expect(classFromBandwidth("discrete", 50)).toBe("entry");
    expect(classFromBandwidth("integrated", 50)).toBe("integrated");
    expect(classFromBandwidth("unified", 400)).toBe("mid");
    expect(classFromBandwidth("unified", 800)).toBe("high");
  });
});
