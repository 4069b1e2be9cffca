import { describe, expect, it } from "vitest";
import { base64ToBytes, bytesToBase64, decodeVector, encodeVector } from "./embedding-vectors.js";

describe("embedding vectors on the wire", () => {
  it("base64 matches the standard encoding, padding included, and round-trips", () => {
    for (const text of ["", "f", "fo", "foo", "foob", "fooba", "foobar"]) {
      const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
      const b64 = bytesToBase64(bytes);
      expect(b64).toBe(Buffer.from(text).toString("base64"));
      expect(Array.from(base64ToBytes(b64)!)).toEqual(Array.from(bytes));
    }
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(bytesToBase64(all)).toBe(Buffer.from(all).toString("base64"));
  });

  it("refuses what is not padded standard base64", () => {
    for (const bad of ["abc", "ab=c", "a===", "ab-_", "ab\u00e9=", "=abc"]) {
      expect(base64ToBytes(bad)).toBeNull();
    }
  });

  it("a vector is little-endian float32 (OpenAI's base64 embedding) and is checked on decoding", () => {
    const v = [0.5, -1, 3.25];
    const text = encodeVector(v);
    expect(text).toBe(Buffer.from(new Float32Array(v).buffer).toString("base64"));
    expect(decodeVector(text, 3)).toEqual({ ok: true, values: Float32Array.from(v) });
    expect(decodeVector(text, 4)).toMatchObject({ ok: false });
    expect(decodeVector(encodeVector([1, Number.POSITIVE_INFINITY]), 2)).toMatchObject({
      ok: false,
      why: "vector value 1 is not a finite number",
    });
    expect(decodeVector("not base64!", 2)).toMatchObject({ ok: false });
    // No model gives a zero vector; a client's cosine similarity with one is NaN.
    expect(decodeVector(encodeVector([0, 0, 0]), 3)).toEqual({
      ok: false,
      why: "vector is all zeros",
    });
    expect(decodeVector(encodeVector([0, -0, 1e-30]), 3)).toMatchObject({ ok: true });
  });
});
