/**
 * Consumer GPU profiles: what a GPU of a given vendor/architecture/device name typically has. Pure
 * data, matched against the WebGPU adapter's `info` (browsers often hide the device name and report
 * only vendor and architecture, so each vendor has family rows after its device rows).
 *
 * `memoryGB` is the typical memory of that device (for unified/integrated parts, a common system
 * configuration, of which the GPU can use only a share); `bandwidthGBs` is the vendor's peak memory
 * bandwidth. Both are *typical figures*, never measurements of the contributor's machine.
 */

export type GpuKind = "discrete" | "unified" | "integrated" | "mobile" | "software";

export interface GpuProfile {
  id: string;
  name: string;
  kind: GpuKind;
  /** Typical memory, GB; null when it cannot be known (software adapters use system RAM). */
  memoryGB: number | null;
  /** Typical peak memory bandwidth, GB/s. */
  bandwidthGBs: number;
  match: { vendor?: RegExp; architecture?: RegExp; description?: RegExp };
}

const nv = /nvidia/i;
const amd = /amd|ati/i;
const intel = /intel/i;
const apple = /apple/i;

function d(
  id: string,
  name: string,
  kind: GpuKind,
  memoryGB: number | null,
  bandwidthGBs: number,
  match: GpuProfile["match"],
): GpuProfile {
  return { id, name, kind, memoryGB, bandwidthGBs, match };
}

/** Device rows first (most specific), then family rows per vendor; first match wins. */
export const GPU_PROFILES: readonly GpuProfile[] = [
  // Software rasterisers: the CPU does the work.
  d("swiftshader", "SwiftShader (CPU)", "software", null, 10, { architecture: /swiftshader/i }),
  d("llvmpipe", "llvmpipe / Basic Render (CPU)", "software", null, 10, {
    description: /llvmpipe|basic render|software/i,
  }),

  // NVIDIA GeForce RTX 50 / 40 / 30 / 20 (desktop figures; laptop parts have less bandwidth).
  d("rtx-5090", "GeForce RTX 5090", "discrete", 32, 1792, { description: /rtx\s*5090/i }),
  d("rtx-5080", "GeForce RTX 5080", "discrete", 16, 960, { description: /rtx\s*5080/i }),
  d("rtx-5070-ti", "GeForce RTX 5070 Ti", "discrete", 16, 896, { description: /rtx\s*5070\s*ti/i }),
  d("rtx-5070", "GeForce RTX 5070", "discrete", 12, 672, { description: /rtx\s*5070/i }),
  d("rtx-5060-ti", "GeForce RTX 5060 Ti", "discrete", 16, 448, { description: /rtx\s*5060\s*ti/i }),
  d("rtx-5060", "GeForce RTX 5060", "discrete", 8, 448, { description: /rtx\s*5060/i }),
  d("rtx-4090", "GeForce RTX 4090", "discrete", 24, 1008, { description: /rtx\s*4090/i }),
  d("rtx-4080", "GeForce RTX 4080", "discrete", 16, 717, { description: /rtx\s*4080/i }),
  d("rtx-4070-ti", "GeForce RTX 4070 Ti", "discrete", 12, 504, { description: /rtx\s*4070\s*ti/i }),
  d("rtx-4070", "GeForce RTX 4070", "discrete", 12, 504, { description: /rtx\s*4070/i }),
  d("rtx-4060-ti", "GeForce RTX 4060 Ti", "discrete", 8, 288, { description: /rtx\s*4060\s*ti/i }),
  d("rtx-4060", "GeForce RTX 4060", "discrete", 8, 272, { description: /rtx\s*4060/i }),
  d("rtx-3090", "GeForce RTX 3090", "discrete", 24, 936, { description: /rtx\s*3090/i }),
  d("rtx-3080", "GeForce RTX 3080", "discrete", 10, 760, { description: /rtx\s*3080/i }),
  d("rtx-3070", "GeForce RTX 3070", "discrete", 8, 448, { description: /rtx\s*3070/i }),
  d("rtx-3060-ti", "GeForce RTX 3060 Ti", "discrete", 8, 448, { description: /rtx\s*3060\s*ti/i }),
  d("rtx-3060", "GeForce RTX 3060", "discrete", 12, 360, { description: /rtx\s*3060/i }),
  d("rtx-3050", "GeForce RTX 3050", "discrete", 8, 224, { description: /rtx\s*3050/i }),
  d("rtx-2080-ti", "GeForce RTX 2080 Ti", "discrete", 11, 616, { description: /rtx\s*2080\s*ti/i }),
  d("rtx-2080", "GeForce RTX 2080", "discrete", 8, 448, { description: /rtx\s*2080/i }),
  d("rtx-2070", "GeForce RTX 2070", "discrete", 8, 448, { description: /rtx\s*2070/i }),
  d("rtx-2060", "GeForce RTX 2060", "discrete", 6, 336, { description: /rtx\s*2060/i }),
  d("nv-blackwell", "NVIDIA Blackwell (RTX 50 series)", "discrete", 12, 672, {
    vendor: nv,
    architecture: /blackwell/i,
  }),
  d("nv-ada", "NVIDIA Ada Lovelace (RTX 40 series)", "discrete", 8, 288, {
    vendor: nv,
    architecture: /lovelace|ada/i,
  }),
  d("nv-ampere", "NVIDIA Ampere (RTX 30 series)", "discrete", 8, 448, {
    vendor: nv,
    architecture: /ampere/i,
  }),
  d("nv-turing", "NVIDIA Turing (RTX 20 / GTX 16 series)", "discrete", 6, 336, {
    vendor: nv,
    architecture: /turing/i,
  }),
  d("nv-other", "NVIDIA GPU", "discrete", 6, 256, { vendor: nv }),

  // AMD Radeon RX 7000 (RDNA3) / 6000 (RDNA2), and Radeon integrated graphics.
  d("rx-7900-xtx", "Radeon RX 7900 XTX", "discrete", 24, 960, { description: /7900\s*xtx/i }),
  d("rx-7900-xt", "Radeon RX 7900 XT", "discrete", 20, 800, { description: /7900\s*xt/i }),
  d("rx-7800-xt", "Radeon RX 7800 XT", "discrete", 16, 624, { description: /7800\s*xt/i }),
  d("rx-7700-xt", "Radeon RX 7700 XT", "discrete", 12, 432, { description: /7700\s*xt/i }),
  d("rx-7600", "Radeon RX 7600", "discrete", 8, 288, { description: /rx\s*7600/i }),
  d("rx-6900", "Radeon RX 6900 / 6950 XT", "discrete", 16, 512, { description: /rx\s*69[05]0/i }),
  d("rx-6800", "Radeon RX 6800 (XT)", "discrete", 16, 512, { description: /rx\s*6800/i }),
  d("rx-6700", "Radeon RX 6700 XT", "discrete", 12, 384, { description: /rx\s*67[05]0/i }),
  d("rx-6600", "Radeon RX 6600 (XT)", "discrete", 8, 256, { description: /rx\s*66[05]0/i }),
  d("rx-6500", "Radeon RX 6500 XT", "discrete", 4, 144, { description: /rx\s*6[45]00/i }),
  d("amd-igpu", "AMD Radeon integrated graphics", "integrated", 16, 90, {
    vendor: amd,
    description: /radeon\(tm\) graphics|radeon graphics|7[68]0m|6[68]0m|vega \d+ graphics/i,
  }),
  d("amd-rdna3", "AMD RDNA 3 (RX 7000 series)", "discrete", 8, 288, {
    vendor: amd,
    architecture: /rdna-?3/i,
  }),
  d("amd-rdna2", "AMD RDNA 2 (RX 6000 series)", "discrete", 8, 256, {
    vendor: amd,
    architecture: /rdna-?2/i,
  }),
  d("amd-other", "AMD GPU", "discrete", 4, 200, { vendor: amd }),

  // Intel Arc (discrete), Xe / Iris Xe and UHD (integrated).
  d("arc-b580", "Intel Arc B580", "discrete", 12, 456, { description: /arc.*b580/i }),
  d("arc-a770", "Intel Arc A770", "discrete", 16, 560, { description: /arc.*a770/i }),
  d("arc-a750", "Intel Arc A750", "discrete", 8, 512, { description: /arc.*a750/i }),
  d("arc-a380", "Intel Arc A380", "discrete", 6, 186, { description: /arc.*a380/i }),
  d("intel-arc", "Intel Arc (Xe-HPG / Xe2)", "discrete", 8, 456, {
    vendor: intel,
    architecture: /xe-?hpg|xe-?2|alchemist|battlemage/i,
  }),
  d("intel-xe-lpg", "Intel Arc integrated graphics (Xe-LPG)", "integrated", 16, 90, {
    vendor: intel,
    architecture: /xe-?lpg/i,
  }),
  d("intel-xe", "Intel Iris Xe graphics", "integrated", 8, 68, {
    vendor: intel,
    architecture: /gen-?12|xe-?lp|xe/i,
  }),
  d("intel-uhd", "Intel UHD / HD graphics", "integrated", 8, 40, { vendor: intel }),

  // Apple silicon (unified memory; browsers usually report only "apple" and a Metal family).
  d("m-ultra", "Apple M-series Ultra", "unified", 64, 800, { description: /m[1-4]\s*ultra/i }),
  d("m4-max", "Apple M4 Max", "unified", 36, 546, { description: /m4\s*max/i }),
  d("m-max", "Apple M1–M3 Max", "unified", 32, 400, { description: /m[1-3]\s*max/i }),
  d("m4-pro", "Apple M4 Pro", "unified", 24, 273, { description: /m4\s*pro/i }),
  d("m-pro", "Apple M1–M3 Pro", "unified", 16, 200, { description: /m[1-3]\s*pro/i }),
  d("m4", "Apple M4", "unified", 16, 120, { description: /apple m4/i }),
  d("m2-m3", "Apple M2 / M3", "unified", 16, 100, { description: /apple m[23]/i }),
  d("m1", "Apple M1", "unified", 8, 68, { description: /apple m1/i }),
  d("apple", "Apple silicon (M-series)", "unified", 16, 100, { vendor: apple }),

  // Phones, tablets and ARM laptops.
  d("snapdragon-x", "Qualcomm Snapdragon X (Adreno X1)", "integrated", 16, 135, {
    vendor: /qualcomm/i,
    description: /x1|x elite|x plus/i,
  }),
  d("adreno", "Qualcomm Adreno", "mobile", 8, 60, { vendor: /qualcomm/i }),
  d("mali", "ARM Mali", "mobile", 6, 35, { vendor: /^arm$/i }),
];

export function matchProfile(info: {
  vendor: string;
  architecture: string;
  description: string;
}): GpuProfile | undefined {
  return GPU_PROFILES.find(
    (p) =>
      (!p.match.vendor || p.match.vendor.test(info.vendor)) &&
      (!p.match.architecture || p.match.architecture.test(info.architecture)) &&
      (!p.match.description || p.match.description.test(info.description)),
  );
}
