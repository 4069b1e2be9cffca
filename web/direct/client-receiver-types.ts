import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";

/**
 * What the client (web/sdk) needs from the caller's end of the direct path. The implementation,
 * client-receiver.ts with the `peerjs` client, is a separate module (/sdk/p2p.js) the SDK imports
 * only when `transport: "p2p"` is asked for, so pages that never use it never download it.
 */

/**
 * How far one job's direct text may run ahead of the coordinator's copy of it (the relay), and so
 * how much of it the SDK and the receiver keep. The relay is the record; the data channel only
 * lets text arrive sooner. With relay-light (web/direct/checkpoints.ts) the coordinator gets the
 * text in checkpoints of at most 128 pieces, 1 s or 16 Ki characters, so while the channel works
 * the relay trails it by the batch the tab is filling plus the one on its way through the
 * coordinator: two windows, 256 pieces and 32 Ki characters (64 KiB in memory). Text further ahead
 * than that is not something a working tab sends while the relay keeps up: the SDK then stops
 * taking the direct path for the job and goes on with the relay alone (see stream.ts), and the
 * receiver keeps no more than that of a job's messages before its stream reads them.
 */
export const DIRECT_WINDOW = { chars: 32 * 1024, pieces: 256 } as const;

/** Calls `listener` with each message and the data channel it came by (a number per channel). */
export type DirectListener = (msg: DirectMessage, channel: number) => void;

export interface DirectFeed {
  /** Messages for this job, in arrival order; calls `listener` for ones already received too. */
  listen(listener: DirectListener): void;
  /** Whether a serving tab's data channel sent anything for this job (for stats). */
  readonly connected: boolean;
  close(): void;
}

/** A request sent with this caller's peer id whose job id the caller does not know yet. */
export interface ExpectedJob {
  /** The response named its job (`x-tabgrid-job-id`): the job's feed, with what came before. */
  feed(jobId: string): DirectFeed;
  /** The request failed or named no job. */
  cancel(): void;
}

export interface DirectReceiver {
  readonly peerId: string;
  /**
   * Call before sending a request with `peerId`. The receiver takes messages only for jobs it was
   * told of: a tab may start sending before the response's headers name the job, so until this
   * expectation is settled messages for a job id not known yet are kept (bounded).
   */
  expect(): ExpectedJob;
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
