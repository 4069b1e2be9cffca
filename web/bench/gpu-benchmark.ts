import type { BenchmarkResult } from "../../shared/gpu/classify.js";
import { COPY_WGSL, MATMUL_WGSL } from "./kernels.js";

/**
 * Run the WGSL micro-benchmarks on a WebGPU device: matrix-multiply GFLOP/s, then streaming-copy
 * bandwidth GB/s, each for about half of `durationMs`. Work is submitted in batches whose size
 * doubles until one batch takes ≥ 40 ms (so timer resolution and submit overhead do not dominate on
 * a fast GPU); the result is the best batch, which is far steadier across runs than the mean on a
 * shared machine. Results are checked against the CPU before they count.
 */

// GPUBufferUsage / GPUMapMode flags (the DOM lib declares only the types, not the constants).
const STORAGE = 0x80;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;

export interface BenchmarkOptions {
  /** Total wall time to spend, ms (a few seconds in the product; shorter in tests). */
  durationMs: number;
  onProgress?: (p: { progress: number; text: string }) => void;
  now?: () => number;
}

export class BenchmarkError extends Error {
  override readonly name = "BenchmarkError";
}

interface Kernel {
  /** Encode `count` runs of the kernel into one submission. */
  submit(count: number): void;
  /** Work done by one run: FLOP for matmul, bytes moved for copy. */
  workPerRun: number;
  verify(): Promise<void>;
  destroy(): void;
}

async function readBack(device: GPUDevice, src: GPUBuffer, bytes: number): Promise<Float32Array> {
  const read = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, read, 0, bytes);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(MAP_READ);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.destroy();
  return out;
}

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    a[i] = ((x >>> 8) % 1000) / 1000 - 0.5;
  }
  return a;
}

function storage(device: GPUDevice, data: Float32Array | number): GPUBuffer {
  const size = typeof data === "number" ? data : data.byteLength;
  const buf = device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST });
  if (typeof data !== "number") device.queue.writeBuffer(buf, 0, data);
  return buf;
}

function matmulKernel(device: GPUDevice, n: number): Kernel {
  const a = filled(n * n, 1);
  const b = filled(n * n, 2);
  const bufA = storage(device, a);
  const bufB = storage(device, b);
  const bufC = storage(device, n * n * 4);
  const module = device.createShaderModule({ code: MATMUL_WGSL });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main", constants: { N: n } },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [bufA, bufB, bufC].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return {
    workPerRun: 2 * n * n * n,
    submit(count) {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      for (let i = 0; i < count; i++) pass.dispatchWorkgroups(n / 16, n / 16);
      pass.end();
      device.queue.submit([enc.finish()]);
    },
    async verify() {
      const c = await readBack(device, bufC, 4 * 4);
      for (let col = 0; col < 4; col++) {
        let want = 0;
        for (let k = 0; k < n; k++) want += a[k]! * b[k * n + col]!;
        if (Math.abs(c[col]! - want) > 1e-2 * Math.max(1, Math.abs(want))) {
          throw new BenchmarkError(`matmul result wrong at column ${col}: ${c[col]} ≠ ${want}`);
        }
      }
    },
    destroy() {
      for (const buf of [bufA, bufB, bufC]) buf.destroy();
    },
  };
}

function copyKernel(device: GPUDevice, bytes: number): Kernel {
  const src = filled(bytes / 4, 3);
  const bufSrc = storage(device, src);
  const bufDst = storage(device, bytes);
  const module = device.createShaderModule({ code: COPY_WGSL });
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [bufSrc, bufDst].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const groups = Math.ceil(bytes / 16 / 256);
  const x = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  const y = Math.ceil(groups / x);
  return {
    workPerRun: 2 * bytes,
    submit(count) {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      for (let i = 0; i < count; i++) pass.dispatchWorkgroups(x, y);
      pass.end();
      device.queue.submit([enc.finish()]);
    },
    async verify() {
      const out = await readBack(device, bufDst, 64);
      for (let i = 0; i < 16; i++) {
        if (out[i] !== src[i]) throw new BenchmarkError(`copy result wrong at ${i}`);
      }
    },
    destroy() {
      bufSrc.destroy();
      bufDst.destroy();
    },
  };
}

/** Best rate (work per second) of `kernel` within `budgetMs`. */
async function measure(
  device: GPUDevice,
  kernel: Kernel,
  budgetMs: number,
  now: () => number,
  onTick: (fraction: number) => void,
): Promise<number> {
  const start = now();
  let count = 1;
  let best = 0;
  // One run first: pipeline compilation and first-touch costs stay out of the figures.
  kernel.submit(1);
  await device.queue.onSubmittedWorkDone();
  for (;;) {
    const t0 = now();
    kernel.submit(count);
    await device.queue.onSubmittedWorkDone();
    const ms = now() - t0;
    if (ms >= 40 || count >= 4096) best = Math.max(best, (kernel.workPerRun * count) / (ms / 1000));
    else count *= 2;
    const elapsed = now() - start;
    onTick(Math.min(1, elapsed / budgetMs));
    // Stop once the budget is spent, but only after at least one batch counted.
    if (elapsed >= budgetMs && best > 0) break;
    if (elapsed >= budgetMs * 4) break;
  }
  if (!(best > 0)) throw new BenchmarkError("no batch could be timed");
  await kernel.verify();
  return best;
}

export async function runGpuBenchmarks(
  device: GPUDevice,
  opts: BenchmarkOptions,
): Promise<BenchmarkResult> {
  const now = opts.now ?? (() => performance.now());
  const progress = opts.onProgress ?? (() => {});
  const started = now();
  const half = Math.max(100, opts.durationMs / 2);
  // A software adapter (SwiftShader) gets smaller problems so one run stays in the tens of ms.
  const software = device.adapterInfo?.architecture === "swiftshader";
  const n = software ? 256 : 1024;
  const copyBytes = Math.min(
    software ? 16 * 1024 * 1024 : 64 * 1024 * 1024,
    device.limits.maxStorageBufferBindingSize,
  );

  progress({ progress: 0, text: "Measuring compute (matrix multiply)…" });
  const matmul = matmulKernel(device, n);
  let flops: number;
  try {
    flops = await measure(device, matmul, half, now, (f) =>
      progress({ progress: f / 2, text: "Measuring compute (matrix multiply)…" }),
    );
  } finally {
    matmul.destroy();
  }

  progress({ progress: 0.5, text: "Measuring memory bandwidth…" });
  const copy = copyKernel(device, copyBytes);
  let bytesPerSecond: number;
  try {
    bytesPerSecond = await measure(device, copy, half, now, (f) =>
      progress({ progress: 0.5 + f / 2, text: "Measuring memory bandwidth…" }),
    );
  } finally {
    copy.destroy();
  }
  progress({ progress: 1, text: "Benchmark done" });
  return {
    matmulGflops: flops / 1e9,
    bandwidthGBs: bytesPerSecond / 1e9,
    durationMs: Math.round(now() - started),
  };
}

/** Request a device of its own, run the benchmarks, release the device. */
export async function benchmarkThisGpu(gpu: GPU, opts: BenchmarkOptions): Promise<BenchmarkResult> {
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new BenchmarkError("no WebGPU adapter is available");
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: Math.min(
        64 * 1024 * 1024,
        adapter.limits.maxStorageBufferBindingSize,
      ),
    },
  });
  try {
    return await runGpuBenchmarks(device, opts);
  } finally {
    device.destroy();
  }
}
