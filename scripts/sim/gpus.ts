import type { Rng } from "../../shared/scheduling/prng.js";

/**
 * The contributor GPU mix. Speeds are for a ~3B-parameter 4-bit model in WebLLM, in the ranges
 * measured on consumer hardware: integrated GPUs (laptops, Apple M-series base) decode at single to
 * low double digits of tokens/s, mid-range discrete cards at 20–40, high-end at 50–80; prefill runs
 * roughly 15–30× faster than decode. The shares are a guess at who opens a contributor tab: mostly
 * laptops, fewer gaming desktops.
 */
export interface GpuClass {
  name: string;
  share: number;
  decode: [number, number];
  prefill: [number, number];
  /** Time to fetch weights from the browser cache and compile shaders. */
  coldLoadMs: [number, number];
}

export const GPU_CLASSES: readonly GpuClass[] = [
  {
    name: "integrated",
    share: 0.5,
    decode: [5, 15],
    prefill: [100, 400],
    coldLoadMs: [30_000, 90_000],
  },
  {
    name: "mid",
    share: 0.35,
    decode: [15, 40],
    prefill: [400, 1000],
    coldLoadMs: [15_000, 40_000],
  },
  {
    name: "high",
    share: 0.15,
    decode: [40, 80],
    prefill: [1000, 2000],
    coldLoadMs: [8_000, 20_000],
  },
];

export interface GpuSpeeds {
  gpu: string;
  decodeTokensPerSec: number;
  prefillTokensPerSec: number;
  coldLoadMs: number;
}

export function sampleGpu(rng: Rng): GpuSpeeds {
  let roll = rng.next();
  let cls = GPU_CLASSES[GPU_CLASSES.length - 1]!;
  for (const c of GPU_CLASSES) {
    if (roll < c.share) {
      cls = c;
      break;
    }
    roll -= c.share;
  }
  return {
    gpu: cls.name,
    decodeTokensPerSec: rng.range(...cls.decode),
    prefillTokensPerSec: rng.range(...cls.prefill),
    coldLoadMs: rng.range(...cls.coldLoadMs),
  };
}

/** Last-mile round trip of a home connection: fibre, cable/DSL, or Wi-Fi/mobile. */
export function sampleAccessDelayMs(rng: Rng): number {
  const roll = rng.next();
  if (roll < 0.3) return rng.range(1, 5);
  if (roll < 0.8) return rng.range(5, 20);
  return rng.range(20, 60);
}
