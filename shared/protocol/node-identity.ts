/**
 * How a tab proves it is the same tab when it reconnects. The tab keeps an ECDSA P-256 key pair
 * (private key non-extractable, in IndexedDB). On every connection the coordinator sends a random
 * `challenge`; the tab answers in `hello` with its public key (SPKI, base64url) and a signature of
 * `challengeText(nonce)`. Its node id is derived from the public key, so no tab can claim another
 * tab's id (and its jobs) without that tab's private key.
 */
export const IDENTITY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
export const SIGNATURE_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;

export function challengeText(nonce: string): string {
  return `tabgrid-node-challenge:v1:${nonce}`;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** base64url without padding (written out because shared/ has no btoa: it is runtime-free). */
export function toBase64url(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let k = 0; k < chars; k++) out += ALPHABET[(n >> (18 - 6 * k)) & 63];
  }
  return out;
}

export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (const ch of text) {
    value = (value << 6) | ALPHABET.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return out;
}

/** `n_` + the first 30 base64url characters of SHA-256(SPKI): stable and unforgeable. */
export async function nodeIdFromPublicKey(
  spki: Uint8Array<ArrayBuffer>,
  sha256: (data: Uint8Array<ArrayBuffer>) => Promise<ArrayBuffer>,
): Promise<string> {
  return `n_${toBase64url(new Uint8Array(await sha256(spki))).slice(0, 30)}`;
}
