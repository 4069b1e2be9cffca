import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";

/**
 * What the client (web/sdk) needs from the caller's end of the direct path. The implementation,
 * client-receiver.ts with the `peerjs` client, is a separate module (/sdk/p2p.js) the SDK imports
 * only when `transport: "p2p"` is asked for, so pages that never use it never download it.
 */
export interface DirectFeed {
  /** Messages for this job, in arrival order; calls `listener` for ones already received too. */
  listen(listener: (msg: DirectMessage) => void): void;
  /** Whether the serving tab's data channel opened (for stats). */
  readonly connected: boolean;
  close(): void;
}

export interface DirectReceiver {
  readonly peerId: string;
  feed(jobId: string): DirectFeed;
  close(): void;
}

export interface DirectReceiverOptions {
  /** The coordinator's origin (signalling lives at /v1/signal). */
  origin: string;
  /** STUN/TURN servers; default: the operator's, from GET /v1/signal/ice. */
  iceServers: RTCIceServer[] | undefined;
  /** Give up opening the signalling socket after this long (then the relay alone is used). */
  openTimeoutMs: number;
  fetch: typeof fetch;
}

export type OpenDirectReceiver = (opts: DirectReceiverOptions) => Promise<DirectReceiver>;
