import { z } from "zod";
import { PEER_ID_RE } from "./p2p-messages.js";

/**
 * The PeerJS signalling channel (what the official `peerjs` client speaks to a PeerServer), served
 * by the coordinator's Signal Durable Object at `/v1/signal/peerjs?key=&id=&token=`.
 *
 * Peers only exchange WebRTC session descriptions and ICE candidates through it; the data itself
 * then flows page <-> tab directly. Every frame from a peer is parsed here (safeParse); the server
 * stamps `src` from the socket (never from the frame) and rebuilds the frame from the known fields
 * below, so nothing else a peer adds is forwarded.
 */

/** Same message names as peerjs-server (`ServerMessageType` in the client). */
export const PeerMessageType = {
  Open: "OPEN",
  Error: "ERROR",
  IdTaken: "ID-TAKEN",
  InvalidKey: "INVALID-KEY",
  Heartbeat: "HEARTBEAT",
  Offer: "OFFER",
  Answer: "ANSWER",
  Candidate: "CANDIDATE",
  Leave: "LEAVE",
  Expire: "EXPIRE",
} as const;

export { PEERJS_KEY, PEER_ID_RE, peerShard, peerIdIn, IceConfigSchema } from "./p2p-messages.js";
export type { IceConfig } from "./p2p-messages.js";

/** The exact heartbeat text the client sends every 5 s; answered by WebSocket auto-response. */
export const HEARTBEAT_FRAME = '{"type":"HEARTBEAT"}';

/** Largest frame a peer may send (an SDP offer is a few kB). */
export const MAX_SIGNAL_FRAME_BYTES = 32 * 1024;

export const PeerIdSchema = z.string().regex(PEER_ID_RE, "a Tabgrid peer id: tg-<shard>-<32 hex>");

const sdp = z.object({
  type: z.enum(["offer", "answer", "pranswer", "rollback"]),
  sdp: z.string(),
});
const candidate = z.object({
  candidate: z.string().max(2000),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().nonnegative().nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional(),
});

/** The payload fields the peerjs client puts in OFFER / ANSWER / CANDIDATE (negotiator.ts). */
export const SignalPayloadSchema = z.object({
  connectionId: z.string().min(1).max(100),
  type: z.enum(["data", "media"]).optional(),
  sdp: sdp.optional(),
  candidate: candidate.optional(),
  label: z.string().max(200).optional(),
  reliable: z.boolean().optional(),
  serialization: z.enum(["binary", "binary-utf8", "json", "raw"]).optional(),
  browser: z.string().max(100).optional(),
  /** Free-form connection metadata chosen by the connecting peer (size bounded by the frame). */
  metadata: z.unknown().optional(),
});
export type SignalPayload = z.infer<typeof SignalPayloadSchema>;

// ---- peer -> server ---------------------------------------------------------------------------

const relayed = (type: "OFFER" | "ANSWER" | "CANDIDATE") =>
  z.object({ type: z.literal(type), dst: PeerIdSchema, payload: SignalPayloadSchema });

export const PeerClientMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal(PeerMessageType.Heartbeat) }),
  relayed("OFFER"),
  relayed("ANSWER"),
  relayed("CANDIDATE"),
  /** LEAVE with a `dst` tells that peer we left; without one, it closes our own registration. */
  z.object({ type: z.literal(PeerMessageType.Leave), dst: PeerIdSchema.optional() }),
]);
export type PeerClientMessage = z.infer<typeof PeerClientMessageSchema>;

// ---- server -> peer ---------------------------------------------------------------------------

/** What the server forwards: always rebuilt from these fields, `src` stamped from the socket. */
export interface RelayedSignal {
  type: "OFFER" | "ANSWER" | "CANDIDATE" | "LEAVE" | "EXPIRE";
  src: string;
  dst: string;
  payload?: SignalPayload;
}

export type PeerServerMessage =
  | { type: "OPEN" }
  | { type: "ERROR" | "ID-TAKEN" | "INVALID-KEY"; payload: { msg: string } }
  | RelayedSignal;

/** Typed close codes of the signalling socket (application range). */
export const SignalCloseCode = {
  Normal: 1000,
  BadFrame: 4400,
  FrameTooLarge: 4413,
  IdTaken: 4409,
  InvalidKey: 4401,
  BadQuery: 4422,
  /** The same id connected again with its token: this older socket is retired. */
  Replaced: 4410,
  /** The id was not issued by this server (GET /v1/signal/peerjs/id): made up or altered. */
  NotIssued: 4403,
  /** The id was issued but has expired (SIGNAL_PEER_ID_TTL_MS): fetch a fresh one. */
  Expired: 4411,
  /** The socket spent its frame budget (token bucket); reconnecting starts a new one. */
  FrameBudget: 4429,
  /** Its address already holds the most signalling sockets allowed in this shard. */
  TooManyPeers: 4430,
  /** The coordinator has no key to sign peer ids with (SIGNAL_SECRET unset). */
  Unavailable: 4503,
} as const;
