import { isRegionHint, type RegionHint } from "../../shared/geo/regions.js";
import { PEER_ID_RE, peerIdIn } from "../../shared/protocol/p2p-messages.js";
import { timingSafeEqual } from "../auth/secret.js";

/**
 * Peer ids are issued by the server, never made up by a client: `tg-<shard>-<nonce><tag>`, where
 * the 32 hex characters are a 16-hex nonce — 8 hex of expiry time (Unix seconds) and 8 of random —
 * and 16 of HMAC-SHA256(SIGNAL_SECRET, shard + nonce) (64 bits each). The format is the one every
 * part already parses (PEER_ID_RE), so nothing that carries ids changes; only the Signal routes and
 * objects check the tag and the time. Stateless: issuing an id stores nothing, and a made-up id is
 * refused before any object is touched.
 *
 * An id opens a signalling socket only until it expires (SIGNAL_PEER_ID_TTL_MS, default 1 h): a
 * leaked or harvested id stops being usable, and a page simply asks for a fresh one. A socket
 * already open keeps its id until it closes; signals to an expired id that is not connected are
 * not queued (the sender gets EXPIRE at once).
 */
const NONCE_HEX = 16;
const EXPIRY_HEX = 8;

/** How long an issued id may open a signalling socket, unless SIGNAL_PEER_ID_TTL_MS says otherwise. */
export const DEFAULT_PEER_ID_TTL_MS = 60 * 60 * 1000;

const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    keys.set(secret, key);
  }
  return key;
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

async function tag(secret: string, shard: string, nonce: string): Promise<string> {
  const data = new TextEncoder().encode(`tabgrid-peer-id\0${shard}\0${nonce}`);
  const mac = await crypto.subtle.sign("HMAC", await keyFor(secret), data);
  return hex(new Uint8Array(mac).subarray(0, (32 - NONCE_HEX) / 2));
}

/** A fresh id in `shard`, signed with `secret`, usable to connect for `ttlMs` from `now`. */
export async function issuePeerId(
  secret: string,
  shard: RegionHint,
  ttlMs: number = DEFAULT_PEER_ID_TTL_MS,
  now: number = Date.now(),
): Promise<string> {
  const expires = Math.ceil((now + ttlMs) / 1000)
    .toString(16)
    .padStart(EXPIRY_HEX, "0")
    .slice(-EXPIRY_HEX);
  const random = hex(crypto.getRandomValues(new Uint8Array((NONCE_HEX - EXPIRY_HEX) / 2)));
  const nonce = expires + random;
  return peerIdIn(shard, nonce + (await tag(secret, shard, nonce)));
}

/** When an id stops opening sockets (ms since the epoch), as written in it; null if malformed. */
export function peerIdExpiresAt(id: string): number | null {
  const body = PEER_ID_RE.exec(id)?.[2];
  return body ? parseInt(body.slice(0, EXPIRY_HEX), 16) * 1000 : null;
}

/**
 * What an id is: `issued` (signed with `secret`, its shard a region hint, not yet expired),
 * `expired` (signed, but past its time) or `not_issued` (made up or altered).
 */
export async function checkPeerId(
  secret: string,
  id: string,
  now: number = Date.now(),
): Promise<"issued" | "expired" | "not_issued"> {
  const m = PEER_ID_RE.exec(id);
  if (!m) return "not_issued";
  const [, shard = "", body = ""] = m;
  if (!isRegionHint(shard)) return "not_issued";
  const expected = await tag(secret, shard, body.slice(0, NONCE_HEX));
  if (!timingSafeEqual(expected, body.slice(NONCE_HEX))) return "not_issued";
  return now < (peerIdExpiresAt(id) ?? 0) ? "issued" : "expired";
}

/** Whether `id` was issued with `secret` and may still connect (see checkPeerId). */
export async function isIssuedPeerId(secret: string, id: string, now?: number): Promise<boolean> {
  return (await checkPeerId(secret, id, now)) === "issued";
}
