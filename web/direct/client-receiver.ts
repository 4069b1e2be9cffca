import { Peer } from "peerjs";
import {
  DirectMessageSchema,
  DirectMetadataSchema,
  type DirectMessage,
} from "../../shared/protocol/p2p-messages.js";
import { fetchIceServers, fetchPeerId, signallingOptions } from "./signalling.js";
import type { DirectFeed, DirectReceiver, DirectReceiverOptions } from "./client-receiver-types.js";

/**
 * The caller's end of the direct path (served as /sdk/p2p.js, loaded by the SDK only for
 * `transport: "p2p"`): one `peerjs` Peer on the coordinator's signalling, registered before the
 * request is sent so the tab can reach it. Tabs connect to it with `{ jobId }` metadata; every
 * message is checked against the shared schema and its job id, anything else is dropped.
 */
const UNCLAIMED_TTL_MS = 60_000;
const MAX_BACKLOG = 10_000;

class JobFeed implements DirectFeed {
  private readonly backlog: DirectMessage[] = [];
  private listener: ((msg: DirectMessage) => void) | null = null;
  connected = false;

  constructor(private readonly onClose: () => void) {}

  push(msg: DirectMessage): void {
    if (this.listener) this.listener(msg);
    else if (this.backlog.length < MAX_BACKLOG) this.backlog.push(msg);
  }

  get claimed(): boolean {
    return this.listener !== null;
  }

  listen(listener: (msg: DirectMessage) => void): void {
    this.listener = listener;
    for (const msg of this.backlog.splice(0)) listener(msg);
  }

  close(): void {
    // The channel stays open for the caller's next job; only this job's feed ends.
    this.listener = null;
    this.onClose();
  }
}

export async function openDirectReceiver(opts: DirectReceiverOptions): Promise<DirectReceiver> {
  const id = await fetchPeerId(opts.origin, null, opts.fetch);
  const iceServers = opts.iceServers ?? (await fetchIceServers(opts.origin, opts.fetch));
  const peer = new Peer(id, signallingOptions(opts.origin, iceServers));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("signalling did not open")),
      opts.openTimeoutMs,
    );
    peer.once("open", () => {
      clearTimeout(timer);
      resolve();
    });
    peer.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

  const feeds = new Map<string, JobFeed>();
  const feedFor = (jobId: string): JobFeed => {
    let feed = feeds.get(jobId);
    if (!feed) {
      const created = new JobFeed(() => feeds.delete(jobId));
      feeds.set(jobId, created);
      // A tab that connects for a job nobody reads (the request failed) is dropped after a while.
      setTimeout(() => {
        if (feeds.get(jobId) === created && !created.claimed) created.close();
      }, UNCLAIMED_TTL_MS);
      feed = created;
    }
    return feed;
  };

  peer.on("connection", (conn) => {
    // A tab connects once per caller and reuses the channel for later jobs: messages are routed
    // by their own job id (job ids are unguessable and only the serving tab learns one).
    if (!DirectMetadataSchema.safeParse(conn.metadata).success) return conn.close();
    conn.on("data", (data) => {
      const msg = DirectMessageSchema.safeParse(data);
      if (!msg.success) return;
      const feed = feedFor(msg.data.jobId);
      feed.connected = true;
      feed.push(msg.data);
    });
  });
  // Signalling trouble after open only affects the direct path; the relay carries on.
  peer.on("error", () => {});

  return {
    peerId: id,
    feed: feedFor,
    close: () => peer.destroy(),
  };
}
