/**
 * Compare two secrets (tokens, key hashes) in time that depends only on the longer length, never on
 * where they differ or whether their lengths match: both are padded to the same length, compared
 * with the runtime's constant-time primitive, and the length check is folded in afterwards.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  const size = Math.max(x.byteLength, y.byteLength, 1);
  const px = new Uint8Array(size);
  const py = new Uint8Array(size);
  px.set(x);
  py.set(y);
  // Always compare the full padded buffers, then the lengths: no early return on a mismatch.
  const same = crypto.subtle.timingSafeEqual(px, py);
  return same && x.byteLength === y.byteLength;
}
