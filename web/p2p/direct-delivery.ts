import { Peer, type DataConnection } from "peerjs";
import type { FinishReason, Usage } from "../../shared/protocol/job.js";
import type { DirectMessage, DirectMetadata } from "../../shared/protocol/p2p-messages.js";
import { peerIdIn, peerShard } from "../../shared/protocol/peerjs-messages.js";
import { signallingOptions } from "./peer-options.js";

/**
 * The tab's end of the direct path. For a job whose caller asked for it (`job.direct.peerId`), the
 * tab connects to the caller's peer through the coordinator's signalling and sends each piece of
 * text as soon as the engine produces it (no coalescing: a data channel has no per-message budget),
 * tagged with its character offset. Until the channel opens, pieces are buffered; if it has not
 * opened within `connectTimeoutMs` (symmetric NAT, blocked UDP) or it fails, the tab stops trying:
 * the coordinator relay carries every piece anyway.
 */
export interface DirectJobChannel {
  delta(text: string): void;
  done(finishReason: FinishReason, usage: Usage): void;
  close(): void;
}

export interface DirectDelivery {
  /** `startOffset`: characters the caller already has (after a failover, the delivered text). */
  open(jobId: string, peerId: string, startOffset: number): DirectJobChannel;
}

export interface DirectDeliveryOptions {
  origin: string;
  iceServers?: RTCIceServer[];
  connectTimeoutMs?: number;
}

export function peerDirectDelivery(opts: DirectDeliveryOptions): DirectDelivery {
  // One registered peer per signalling shard, created on the first job that needs it.
  const peers = new Map<string, Promise<Peer>>();
  const peerIn = (shard: string): Promise<Peer> => {
    let p = peers.get(shard);
    if (!p) {
      p = new Promise<Peer>((resolve, reject) => {
        const id = peerIdIn(shard, crypto.randomUUID().replaceAll("-", ""));
        const peer = new Peer(id, signallingOptions(opts.origin, opts.iceServers ?? []));
        peer.once("open", () => resolve(peer));
        peer.once("error", reject);
        peer.on("disconnected", () => peers.delete(shard));
        peer.on("close", () => peers.delete(shard));
      });
      p.catch(() => peers.delete(shard));
      peers.set(shard, p);
    }
    return p;
  };

  return {
    open(jobId, peerId, startOffset) {
      const shard = peerShard(peerId);
      let offset = startOffset;
      let queue: DirectMessage[] | null = [];
      let conn: DataConnection | null = null;
      let closed = false;
      const send = (msg: DirectMessage) => {
        if (closed) return;
        if (queue) queue.push(msg);
        else if (conn?.open) void conn.send(msg);
      };
      const giveUp = () => {
        queue = null;
        closed = true;
        conn?.close();
      };
      if (!shard) giveUp();
      else {
        const timer = setTimeout(giveUp, opts.connectTimeoutMs ?? 5000);
        peerIn(shard)
          .then((peer) => {
            if (closed) return;
            const metadata: DirectMetadata = { jobId };
            conn = peer.connect(peerId, { reliable: true, serialization: "json", metadata });
            conn.on("open", () => {
              clearTimeout(timer);
              const backlog = queue ?? [];
              queue = null;
              for (const msg of backlog) void conn?.send(msg);
            });
            conn.on("error", giveUp);
            conn.on("close", () => (closed = true));
          })
          .catch(giveUp);
      }
      return {
        delta(text) {
          if (!text) return;
          send({ type: "delta", jobId, offset, text });
          offset += text.length;
        },
        done(finishReason, usage) {
          send({ type: "done", jobId, chars: offset, finishReason, usage });
        },
        close() {
          // Let the last messages drain before the channel closes (the caller closes it too).
          if (conn?.open) setTimeout(() => conn?.close(), 1000);
          else giveUp();
          closed = true;
        },
      };
    },
  };
}
