import type { PeerOptions } from "peerjs";
import { IceConfigSchema, PEERJS_KEY, PEER_ID_RE } from "../../shared/protocol/p2p-messages.js";

/** `peerjs` options for the coordinator's signalling at <origin>/v1/signal/ (see edge/signal). */
export function signallingOptions(origin: string, iceServers: RTCIceServer[]): PeerOptions {
  const url = new URL(origin);
  const secure = url.protocol === "https:";
  return {
    host: url.hostname,
    port: Number(url.port) || (secure ? 443 : 80),
    secure,
    path: "/v1/signal/",
    key: PEERJS_KEY,
    config: { iceServers },
    debug: 0,
  };
}

/** The operator's STUN/TURN servers (GET /v1/signal/ice); none if unreadable (loopback/LAN only). */
export async function fetchIceServers(
  origin: string,
  doFetch: typeof fetch = fetch,
): Promise<RTCIceServer[]> {
  try {
    const res = await doFetch(`${origin}/v1/signal/ice`);
    const parsed = IceConfigSchema.safeParse(await res.json());
    return parsed.success ? parsed.data.iceServers : [];
  } catch {
    return [];
  }
}

/**
 * A peer id issued by the coordinator (GET /v1/signal/peerjs/id; `shard` asks for one in that
 * signalling shard, as a tab joining a caller's shard does). Ids are signed by the server: one
 * made up here would be refused by the signalling socket. They also expire (an hour by default,
 * SIGNAL_PEER_ID_TTL_MS; an open socket keeps its id): call this for every new `Peer`, never keep
 * an id for later — an expired one is refused with ERROR and close 4411.
 */
export async function fetchPeerId(
  origin: string,
  shard: string | null = null,
  doFetch: typeof fetch = fetch,
): Promise<string> {
  const query = shard ? `?shard=${encodeURIComponent(shard)}` : "";
  const res = await doFetch(`${origin}/v1/signal/peerjs/id${query}`);
  if (!res.ok) throw new Error(`the signalling issued no peer id (HTTP ${res.status})`);
  const id = (await res.text()).trim();
  if (!PEER_ID_RE.test(id)) throw new Error("the signalling answered an invalid peer id");
  return id;
}
