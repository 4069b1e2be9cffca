import { describe, expect, it } from "vitest";
import { challengeText, fromBase64url, nodeIdFromPublicKey, toBase64url } from "./node-identity.js";

describe("base64url", () => {
  it("round-trips every length and matches Node's encoder", () => {
    for (let n = 0; n < 70; n++) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
      const text = toBase64url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64url"));
      expect(fromBase64url(text)).toEqual(bytes);
    }
  });
  it("rejects text that is not base64url", () => {
    expect(fromBase64url("a+b/")).toBeNull();
    expect(fromBase64url("abcde")).toBeNull();
  });
});

describe("node identity", () => {
  it("derives a stable id from the public key and verifies a signed challenge", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
    const sha = (d: Uint8Array<ArrayBuffer>) => crypto.subtle.digest("SHA-256", d);
    const id = await nodeIdFromPublicKey(spki, sha);
    expect(id).toMatch(/^n_[A-Za-z0-9_-]{30}$/);
    expect(await nodeIdFromPublicKey(spki, sha)).toBe(id);
    const sig = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      pair.privateKey,
      new TextEncoder().encode(challengeText("nonce-1")),
    );
    const ok = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      pair.publicKey,
      sig,
      new TextEncoder().encode(challengeText("nonce-2")),
    );
    expect(ok).toBe(false);
  });
});
