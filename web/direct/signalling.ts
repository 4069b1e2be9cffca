import type { PeerOptions } from "peerjs";
import { IceConfigSchema, PEERJS_KEY } from "../../shared/protocol/p2p-messages.js";

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
