import { Peer, type DataConnection } from "peerjs";
import type { FinishReason, Usage } from "../../shared/protocol/job.js";
import type { DirectMessage, DirectMetadata } from "../../shared/protocol/p2p-messages.js";
import { peerShard } from "../../shared/protocol/p2p-messages.js";
import { fetchIceServers, fetchPeerId, signallingOptions } from "./signalling.js";

/**
 * The tab's end of the direct path. For a job whose caller asked for it (`job.direct.peerId`), the
 * tab connects to the caller's peer through the coordinator's signalling and sends each piece of
 * text as soon as the engine produces it (no coalescing: a data channel has no per-message budget),
 * tagged with its character offset. Until the channel opens, pieces are buffered; if it has not
 * opened within `connectTimeoutMs` (symmetric NAT, blocked UDP) or it fails, the tab stops trying:
 * the coordinator relay carries every piece. While the channel is open, the coordinator gets the
 * text in checkpoints instead (relay-light, checkpoints.ts).
 */
export interface DirectJobChannel {
  /**
   * The data channel to the caller is open now: the caller gets every piece directly, so the
   * coordinator needs only checkpoints (protocol 7; checkpoints.ts). False before it opens and
   * once it failed or closed, when the relay carries every piece again.
   */
  readonly connected: boolean;
  delta(text: string): void;
  done(finishReason: FinishReason, usage: Usage): void;
  close(): void;
}

export interface DirectSender {
  /** `startOffset`: characters the caller already has (after a failover, the delivered text). */
  open(jobId: string, peerId: string, startOffset: number): DirectJobChannel;
}

export interface DirectSenderOptions {
  origin: string;
  /** STUN/TURN servers; default: the operator's, from GET /v1/signal/ice. */
  iceServers?: RTCIceServer[];
  connectTimeoutMs?: number;
}

export function peerDirectSender(opts: DirectSenderOptions): DirectSender {
  // One registered peer per signalling shard, created on the first job that needs it.
  const peers = new Map<string, Promise<Peer>>();
  const peerIn = (shard: string): Promise<Peer> => {
    let p = peers.get(shard);
    if (!p) {
      p = Promise.all([
        opts.iceServers ? Promise.resolve(opts.iceServers) : fetchIceServers(opts.origin),
        // The server issues the tab's id in the caller's shard (ids are signed; see edge/signal).
        fetchPeerId(opts.origin, shard),
      ]).then(
        ([iceServers, id]) =>
          new Promise<Peer>((resolve, reject) => {
            const peer = new Peer(id, signallingOptions(opts.origin, iceServers));
            peer.once("open", () => resolve(peer));
            peer.once("error", reject);
            peer.on("disconnected", () => peers.delete(shard));
            peer.on("close", () => peers.delete(shard));
          }),
      );
      p.catch(() => peers.delete(shard));
      peers.set(shard, p);
    }
    return p;
  };

  // One data channel per caller, reused for its later jobs (each message names its job); closed
  // after a quiet minute.
  const links = new Map<string, { conn: Promise<DataConnection>; idle: number | null }>();
  const linkTo = (peerId: string, shard: string, jobId: string) => {
    let link = links.get(peerId);
    if (!link) {
      const conn = peerIn(shard).then(
        (peer) =>
          new Promise<DataConnection>((resolve, reject) => {
            const metadata: DirectMetadata = { jobId };
            const c = peer.connect(peerId, { reliable: true, serialization: "json", metadata });
            const timer = setTimeout(() => {
              reject(new Error("ICE did not connect"));
              c.close();
            }, opts.connectTimeoutMs ?? 5000);
            c.on("open", () => {
              clearTimeout(timer);
              resolve(c);
            });
            c.on("error", (err) => {
              clearTimeout(timer);
              reject(err);
            });
            c.on("close", () => links.delete(peerId));
          }),
      );
      conn.catch(() => links.delete(peerId));
      link = { conn, idle: null };
      links.set(peerId, link);
    }
    if (link.idle !== null) clearTimeout(link.idle);
    link.idle = null;
    return link;
  };
  const release = (peerId: string) => {
    const link = links.get(peerId);
    if (!link) return;
    link.idle = setTimeout(() => {
      links.delete(peerId);
      void link.conn.then((c) => c.close()).catch(() => {});
    }, 60_000) as unknown as number;
  };

  return {
    open(jobId, peerId, startOffset) {
      const shard = peerShard(peerId);
      let offset = startOffset;
      let queue: DirectMessage[] | null = [];
      let conn: DataConnection | null = null;
      let dead = !shard;
      const send = (msg: DirectMessage) => {
        if (dead) return;
        if (queue) queue.push(msg);
        else if (conn?.open) void conn.send(msg);
      };
      if (shard) {
        linkTo(peerId, shard, jobId)
          .conn.then((c) => {
            conn = c;
            const backlog = queue ?? [];
            queue = null;
            for (const msg of backlog) if (!dead || msg.type === "done") void c.send(msg);
          })
          .catch(() => {
            // ICE failed or timed out: the relay carries this job.
            dead = true;
            queue = null;
          });
      }
      return {
        get connected() {
          return !dead && conn?.open === true;
        },
        delta(text) {
          if (!text) return;
          send({ type: "delta", jobId, offset, text });
          offset += text.length;
        },
        done(finishReason, usage) {
          send({ type: "done", jobId, chars: offset, finishReason, usage });
        },
        close() {
          if (shard) release(peerId);
        },
      };
    },
  };
}
