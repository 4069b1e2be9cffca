import { isRegionHint, type RegionHint } from "../../shared/geo/regions.js";
import { PEER_ID_RE, peerIdIn } from "../../shared/protocol/p2p-messages.js";
import { timingSafeEqual } from "../auth/secret.js";

/**
 * Peer ids are issued by the server, never made up by a client: `tg-<shard>-<nonce><tag>`, where
 * the 32 hex characters are 16 of random nonce and 16 of HMAC-SHA256(SIGNAL_SECRET, shard + nonce)
 * (64 bits each). The format is the one every part already parses (PEER_ID_RE), so nothing that
 * carries ids changes; only the Signal routes and objects check the tag. Stateless: issuing an id
 * stores nothing, and a made-up id is refused before any object is touched.
 */
const NONCE_HEX = 16;

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

/** A fresh id in `shard`, signed with `secret`. */
export async function issuePeerId(secret: string, shard: RegionHint): Promise<string> {
  const nonce = hex(crypto.getRandomValues(new Uint8Array(NONCE_HEX / 2)));
  return peerIdIn(shard, nonce + (await tag(secret, shard, nonce)));
}

/** Whether `id` was issued with `secret` (its shard a region hint, its tag right). */
export async function isIssuedPeerId(secret: string, id: string): Promise<boolean> {
  const m = PEER_ID_RE.exec(id);
  if (!m) return false;
  const [, shard = "", body = ""] = m;
  if (!isRegionHint(shard)) return false;
  const expected = await tag(secret, shard, body.slice(0, NONCE_HEX));
  return timingSafeEqual(expected, body.slice(NONCE_HEX));
}
