/**
 * Embedding vectors on the wire: each vector is the base64 of its little-endian float32 values
 * (OpenAI's `encoding_format: "base64"` uses the same bytes), so a tab's answer is compact (4 bytes
 * a value plus a third) and exact, and the coordinator can hand it to a base64 client unchanged.
 */

/** Most inputs one embeddings request (and so one job) may carry: LangChain's default batch. */
export const MAX_EMBEDDING_INPUTS = 512;
/** Longest vector any embedding model may give, in values (snowflake-arctic-embed: 384 and 768). */
export const MAX_EMBEDDING_DIMENSIONS = 4096;
/** Base64 characters of the longest vector. */
export const MAX_VECTOR_BASE64 = Math.ceil((MAX_EMBEDDING_DIMENSIONS * 4) / 3) * 4;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** Value of each ASCII code in base64, 255 for codes outside the alphabet. */
const VALUES = new Uint8Array(128).fill(255);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;
const PAD = "=".charCodeAt(0);

/** Every 12-bit value as its two base64 characters: three bytes are two lookups. */
const PAIRS = Array.from({ length: 4096 }, (_, n) => ALPHABET[n >> 6]! + ALPHABET[n & 63]!);

/**
 * Standard base64 with padding. Written out because shared/ has no btoa (it is runtime-free), and
 * with a table rather than character by character: a 512-input answer is 2 MB of base64.
 */
export function bytesToBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  const whole = bytes.length - (bytes.length % 3);
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    parts.push(PAIRS[n >> 12]! + PAIRS[n & 4095]!);
  }
  const left = bytes.length - whole;
  if (left) {
    const n = (bytes[whole]! << 16) | ((bytes[whole + 1] ?? 0) << 8);
    parts.push(PAIRS[n >> 12]! + (left === 2 ? ALPHABET[(n >> 6) & 63]! : "=") + "=");
  }
  return parts.join("");
}

/** The bytes of padded standard base64, or null when `text` is not that. */
export function base64ToBytes(text: string): Uint8Array<ArrayBuffer> | null {
  if (text.length % 4 !== 0) return null;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let k = 0; k < 4; k++) {
      const code = text.charCodeAt(i + k);
      const last = i + 4 === text.length;
      if (code === PAD && last && k >= 4 - pad) {
        n <<= 6;
        continue;
      }
      const v = code < 128 ? VALUES[code]! : 255;
      if (v === 255) return null;
      n = (n << 6) | v;
    }
    if (o < out.length) out[o++] = (n >> 16) & 0xff;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
  return out;
}

/** A vector as the wire carries it. */
export function encodeVector(values: ArrayLike<number>): string {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytesToBase64(bytes);
}

/**
 * A vector from the wire, checked: exactly `dimensions` values, every one finite, not all zero. Returns the
 * values, or why the vector is refused (the caller treats that as the tab's fault).
 */
export function decodeVector(
  text: string,
  dimensions: number,
): { ok: true; values: Float32Array } | { ok: false; why: string } {
  if (text.length > MAX_VECTOR_BASE64) return { ok: false, why: "vector too long" };
  const bytes = base64ToBytes(text);
  if (!bytes) return { ok: false, why: "vector is not base64" };
  if (bytes.length !== dimensions * 4) {
    return {
      ok: false,
      why: `vector has ${bytes.length / 4} values, the model gives ${dimensions}`,
    };
  }
  const view = new DataView(bytes.buffer);
  const values = new Float32Array(dimensions);
  let nonZero = false;
  for (let i = 0; i < dimensions; i++) {
    const v = view.getFloat32(i * 4, true);
    if (!Number.isFinite(v)) return { ok: false, why: `vector value ${i} is not a finite number` };
    values[i] = v;
    if (v !== 0) nonZero = true;
  }
  // No embedding model gives a zero vector, and a client's cosine similarity with one is 0/0:
  // its ranking breaks (NaN) instead of merely being wrong.
  if (!nonZero) return { ok: false, why: "vector is all zeros" };
  return { ok: true, values };
}
