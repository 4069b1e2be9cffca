/**
 * API keys look like `tg_<id>_<secret>`: the id (public, 12 hex) names the key's Durable Object,
 * the secret is 32 random bytes. Only the SHA-256 of the whole key is stored. Keys carry 256 bits of
 * randomness, so a fast hash is enough (no password stretching needed).
 */
const KEY_PATTERN = /^tg_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface ParsedKey {
  id: string;
  key: string;
}

export function parseApiKey(key: string): ParsedKey | null {
  const m = KEY_PATTERN.exec(key);
  return m ? { id: m[1] as string, key } : null;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function newApiKey(): ParsedKey {
  const id = hex(crypto.getRandomValues(new Uint8Array(6)));
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { id, key: `tg_${id}_${secret}` };
}

export async function hashKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return hex(new Uint8Array(digest));
}

/** Compare two secrets without leaking where they differ (or whether their lengths do). */
export { timingSafeEqual as sameSecret } from "./secret.js";
