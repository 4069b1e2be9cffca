import { z } from "zod";

/**
 * Statements a contributor tab signs with its identity key (the ECDSA P-256 key of
 * shared/protocol/node-identity.ts) to act on its credit account over HTTP: link the identity to
 * an API key, or choose a public display name. The coordinator derives the identity from the
 * public key sent with the statement, so only the holder of the private key can act for it; the
 * key id is inside the signed text, so a proof made for one API key is worthless for another.
 * `signedAt` bounds replays: the coordinator takes a statement only within PROOF_WINDOW_MS of its
 * clock and only if it is newer than the last one it took for the same identity.
 */

/** How far `signedAt` may be from the coordinator's clock. */
export const PROOF_WINDOW_MS = 10 * 60_000;

/** Longest display name, in characters (after sanitizing). */
export const MAX_DISPLAY_NAME = 32;

export function linkText(keyId: string, signedAt: number): string {
  return `tabgrid-credit-link:v1:${keyId}:${signedAt}`;
}

export function nameText(name: string | null, signedAt: number): string {
  return `tabgrid-credit-name:v1:${name ?? ""}:${signedAt}`;
}

const proofFields = {
  /** SPKI of the tab's public key, base64url (as in hello). */
  publicKey: z.string().min(40).max(200),
  /** Milliseconds since the epoch, when the tab signed. */
  signedAt: z.number().int().positive(),
  /** ECDSA P-256 / SHA-256 signature of the statement's text, base64url (IEEE P1363). */
  signature: z.string().min(40).max(200),
};

/** POST /v1/credits/link (with the API key as Bearer): link this identity to the caller's key. */
export const LinkRequestSchema = z.strictObject(proofFields);
export type LinkRequest = z.infer<typeof LinkRequestSchema>;

/** POST /v1/credits/name: show (or, with null, stop showing) a name on the public list. */
export const NameRequestSchema = z.strictObject({
  ...proofFields,
  name: z.string().max(200).nullable(),
});
export type NameRequest = z.infer<typeof NameRequestSchema>;

/**
 * A display name as the public list may show it: Unicode-normalized (NFKC), letters, digits,
 * spaces and `.-_'` only (no markup, no control or bidi characters), runs of spaces collapsed,
 * at most MAX_DISPLAY_NAME characters. Null when nothing showable is left.
 */
export function sanitizeDisplayName(raw: string): string | null {
  const kept = raw
    .normalize("NFKC")
    .replace(/[^\p{L}\p{N} ._'-]/gu, "")
    .replace(/\s+/g, " ")
    .trim();
  const name = [...kept].slice(0, MAX_DISPLAY_NAME).join("").trim();
  return name.length > 0 ? name : null;
}
