import { describe, expect, it } from "vitest";
import { sha256Hex } from "./sha256.js";

async function webCrypto(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("sha256Hex", () => {
  it("matches the standard test vectors", () => {
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("agrees with WebCrypto across block boundaries and non-ASCII text", async () => {
    const samples = [
      "é€😀 mixed",
      "lone \ud800 surrogate",
      "end \udc00",
      "x".repeat(55),
      "x".repeat(56),
      "y".repeat(64),
      "z".repeat(1000),
    ];
    for (let n = 0; n < 130; n += 7) samples.push("ab€".repeat(n));
    for (const s of samples) expect(sha256Hex(s)).toBe(await webCrypto(s));
  });
});
