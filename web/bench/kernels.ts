/**
 * The WGSL micro-benchmark kernels. `matmul` is a 16×16-tiled f32 matrix multiply (compute-bound,
 * 2·N³ FLOP per dispatch); `copy` streams one vec4<f32> array into another (memory-bound, reads and
 * writes every byte once), the access pattern of LLM decode.
 */
export const MATMUL_WGSL = /* wgsl */ `
override N: u32 = 256u;
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
var<workgroup> ta: array<f32, 256>;
var<workgroup> tb: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let row = g.y;
  let col = g.x;
  var acc = 0.0;
  for (var t = 0u; t < N; t += 16u) {
    ta[l.y * 16u + l.x] = a[row * N + t + l.x];
    tb[l.y * 16u + l.x] = b[(t + l.y) * N + col];
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      acc += ta[l.y * 16u + k] * tb[k * 16u + l.x];
    }
    workgroupBarrier();
  }
  c[row * N + col] = acc;
}
`;

export const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) n: vec3u) {
  let i = g.x + g.y * n.x * 256u;
  if (i < arrayLength(&src)) {
    dst[i] = src[i];
  }
}
`;
