import { Peer, type DataConnection } from "peerjs";
import {
  DirectMessageSchema,
  DirectMetadataSchema,
  type DirectMessage,
} from "../../shared/protocol/p2p-messages.js";
import { fetchIceServers, fetchPeerId, signallingOptions } from "./signalling.js";
import {
  DIRECT_WINDOW,
  type DirectFeed,
  type DirectListener,
  type DirectReceiver,
  type DirectReceiverOptions,
  type ExpectedJob,
} from "./client-receiver-types.js";

/**
 * The caller's end of the direct path (served as /sdk/p2p.js, loaded by the SDK only for
 * `transport: "p2p"`): one `peerjs` Peer on the coordinator's signalling, registered before the
 * request is sent so the tab can reach it. Tabs connect to it with `{ jobId }` metadata; every
 * message is checked against the shared schema and taken only for a job this caller is waiting
 * for, into a bounded backlog until its stream listens. Anything else is dropped, and a channel
 * that names a job the caller never asked for is closed.
 *
 * The peer id outlives a request (one Peer per client, and a tab keeps its channel to the caller
 * for later jobs), so a tab that served this caller once can connect or send again at any time:
 * what it sends must not be able to grow this page's memory.
 */
const UNCLAIMED_TTL_MS = 60_000;
/** Jobs whose feed closed, remembered so a tab's late messages for them are dropped quietly. */
const ENDED_KEPT = 256;
/** Open data channels at once: one per tab serving this caller now (two in a hedge race). */
const MAX_CHANNELS = 32;
/** A channel not open by then is let go (the tab gives up after 5 s: tab-sender.ts). */
const OPEN_DEADLINE_MS = 15_000;

/** Messages kept for a job before its stream listens: no more than the stream would take. */
class Backlog {
  readonly items: Array<[DirectMessage, number]> = [];
  private chars = 0;
  /**
   * Over its bounds once: the job keeps what came before and takes nothing more over the data
   * channel (the relay carries every piece).
   */
  full = false;

  add(msg: DirectMessage, channel: number): void {
    if (this.full) return;
    this.chars += msg.type === "delta" ? msg.text.length : 0;
    if (this.chars > DIRECT_WINDOW.chars || this.items.length >= DIRECT_WINDOW.pieces) {
      this.full = true;
      return;
    }
    this.items.push([msg, channel]);
  }
}

class JobFeed implements DirectFeed {
  private listener: DirectListener | null = null;
  connected: boolean;

  constructor(
    /** What arrived before the response named the job, if anything. */
    private readonly backlog: Backlog,
    private readonly onClose: () => void,
  ) {
    this.connected = backlog.items.length > 0;
  }

  push(msg: DirectMessage, channel: number): void {
    this.connected = true;
    if (this.backlog.full) return;
    if (this.listener) this.listener(msg, channel);
    else this.backlog.add(msg, channel);
  }

  get claimed(): boolean {
    return this.listener !== null;
  }

  listen(listener: DirectListener): void {
    this.listener = listener;
    for (const [msg, channel] of this.backlog.items.splice(0)) listener(msg, channel);
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

  /** Jobs the caller knows it is waiting for (their response named them). */
  const feeds = new Map<string, JobFeed>();
  const ended: string[] = [];
  /** Requests sent whose job id is not known yet, and what arrived meanwhile for unknown ids. */
  let waiting = 0;
  const held = new Map<string, Backlog>();

  const newFeed = (jobId: string, backlog: Backlog): JobFeed => {
    const feed = new JobFeed(backlog, () => {
      if (feeds.get(jobId) !== feed) return;
      feeds.delete(jobId);
      ended.push(jobId);
      if (ended.length > ENDED_KEPT) ended.shift();
    });
    feeds.set(jobId, feed);
    // A stream that is never read lets go of its feed after a while.
    setTimeout(() => {
      if (!feed.claimed) feed.close();
    }, UNCLAIMED_TTL_MS);
    return feed;
  };

  const expect = (): ExpectedJob => {
    waiting += 1;
    let settled = false;
    const settle = () => {
      if (!settled) waiting -= 1;
      settled = true;
      if (waiting === 0) held.clear();
    };
    return {
      feed: (jobId) => {
        const feed = feeds.get(jobId) ?? newFeed(jobId, held.get(jobId) ?? new Backlog());
        held.delete(jobId);
        settle();
        return feed;
      },
      cancel: settle,
    };
  };

  /**
   * Where a message for `jobId` goes: its feed, a holding backlog while a request's job id is not
   * known yet, nowhere (a job this caller is done with, or no room left to hold it), or "refuse":
   * nothing is waiting, so no tab serving this caller can name this job.
   */
  const routeOf = (jobId: string): JobFeed | Backlog | null | "refuse" => {
    const feed = feeds.get(jobId);
    if (feed) return feed;
    if (ended.includes(jobId)) return null;
    if (waiting === 0) return "refuse";
    let backlog = held.get(jobId);
    if (!backlog && held.size < waiting) held.set(jobId, (backlog = new Backlog()));
    return backlog ?? null;
  };

  let channels = 0;
  let nextChannel = 1;
  peer.on("connection", (conn: DataConnection) => {
    // Job ids are 128-bit random and known only to the caller, the coordinator and the tab serving
    // the job, so a tab naming one this caller is not waiting for is not serving it: closing its
    // channel costs a real job nothing (the relay carries every piece, and a tab opens a new
    // channel for its next job when the old one closed).
    const meta = DirectMetadataSchema.safeParse(conn.metadata);
    if (!meta.success || channels >= MAX_CHANNELS || routeOf(meta.data.jobId) === "refuse") {
      conn.close();
      return;
    }
    const channel = nextChannel++;
    let open = true;
    channels += 1;
    const shut = () => {
      if (!open) return;
      open = false;
      channels -= 1;
      conn.close();
    };
    // peerjs emits no "close" for a channel that never opened (ICE failed: "error"; or nothing).
    conn.on("close", shut);
    conn.on("error", shut);
    setTimeout(() => {
      if (!conn.open) shut();
    }, OPEN_DEADLINE_MS);
    conn.on("data", (data) => {
      if (!open) return;
      const msg = DirectMessageSchema.safeParse(data);
      if (!msg.success) return;
      const route = routeOf(msg.data.jobId);
      if (route === "refuse") shut();
      else if (route instanceof JobFeed) route.push(msg.data, channel);
      else route?.add(msg.data, channel);
    });
  });
  // Signalling trouble after open only affects the direct path; the relay carries on.
  peer.on("error", () => {});

  return {
    peerId: id,
    expect,
    close: () => peer.destroy(),
  };
}
