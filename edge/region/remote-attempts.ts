import { log } from "../http/log.js";
import {
  parseRemoteEvent,
  remoteJobOf,
  remoteNode,
  type ContinuationPort,
  type MovePlanner,
  type RemoteEvent,
  type RemoteJob,
} from "./continuation.js";
import type { JobRequest } from "./job-request.js";
import { shardName, type Shard } from "./shard-name.js";

/** What the origin does with one event of a remote attempt (remote-following.ts). */
export type RemoteHandler = (jobId: string, node: string, event: RemoteEvent) => Promise<void>;

/**
 * The attempts of this object's jobs that run as continuation jobs on other Region objects: opens
 * them through the port, reads each one's events in order (one read loop per job, in memory; after
 * eviction `follow` starts again from the text held) and hands them to remote-following.ts. A read
 * that ends without a done or error event (the remote object unreachable after the stream's own
 * re-subscriptions) is a failed attempt.
 */
export class RemoteAttempts {
  private readonly reading = new Map<string, RemoteJob>();
  private handler: RemoteHandler = async () => undefined;

  constructor(private readonly port: ContinuationPort) {}

  onEvent(handler: RemoteHandler): void {
    this.handler = handler;
  }

  /** Open the continuation elsewhere; null when no other object can take it now. */
  async open(request: JobRequest): Promise<RemoteJob | null> {
    try {
      return await this.port.open(request);
    } catch (e) {
      log("warn", "continuing a job elsewhere failed", { error: String(e) });
      return null;
    }
  }

  /** A planner for one pass over the waiting line; null when the routing view cannot be read. */
  async planner(): Promise<MovePlanner | null> {
    try {
      return await this.port.movePlanner();
    } catch (e) {
      log("warn", "reading the routing view to move waiting jobs failed", { error: String(e) });
      return null;
    }
  }

  /** Ask `target` to take a waiting job (within its acceptUpToMs); null if it declined or failed. */
  async openOn(target: Shard, request: JobRequest): Promise<RemoteJob | null> {
    try {
      return await this.port.openOn(target, request);
    } catch (e) {
      log("warn", "moving a waiting job failed", { to: shardName(target), error: String(e) });
      return null;
    }
  }

  /** Read `remote` as the attempt of `jobId` here until it ends or `stop` is called. */
  follow(jobId: string, remote: RemoteJob): void {
    this.stop(jobId);
    this.reading.set(jobId, remote);
    void this.read(jobId, remote);
  }

  /** Read an attempt again after this object restarted, from character `after` of its text. */
  resume(jobId: string, node: string, after: number, owner: string | null): void {
    const remoteJobId = remoteJobOf(node);
    if (remoteJobId) this.follow(jobId, this.port.resume(remoteJobId, after, owner));
  }

  /** Stop reading the job's remote attempt (it ended, or the job did). */
  stop(jobId: string): void {
    const remote = this.reading.get(jobId);
    if (!remote) return;
    this.reading.delete(jobId);
    void remote.stop().catch(() => undefined);
  }

  /** Stop reading and cancel the remote job (the client cancelled, or the origin ended the job). */
  async cancel(jobId: string, node: string, reason: string, owner: string | null): Promise<void> {
    this.stop(jobId);
    const remoteJobId = remoteJobOf(node);
    if (!remoteJobId) return;
    await this.port
      .cancel(remoteJobId, reason, owner)
      .catch((e: unknown) => log("warn", "cancelling a remote job failed", { error: String(e) }));
  }

  /** A continuation opened and then not used (the job was taken or ended meanwhile). */
  async discard(remote: RemoteJob, owner: string | null, reason: string): Promise<void> {
    void remote.stop().catch(() => undefined);
    await this.port.cancel(remote.jobId, reason, owner).catch(() => undefined);
  }

  private async read(jobId: string, remote: RemoteJob): Promise<void> {
    const node = remoteNode(remote.jobId);
    for (;;) {
      let raw: unknown;
      try {
        raw = await remote.next();
      } catch (e) {
        raw = { type: "error", error: { code: "node_gone", message: LOST } };
        log("warn", "reading a remote job failed", { jobId, error: String(e) });
      }
      if (this.reading.get(jobId) !== remote || raw === null) return;
      const parsed = parseRemoteEvent(raw);
      const event: RemoteEvent = "type" in parsed ? parsed : { type: "error", error: parsed };
      const last = event.type === "done" || event.type === "error";
      if (last) this.reading.delete(jobId);
      try {
        await this.handler(jobId, node, event);
      } catch (e) {
        log("error", "handling a remote job's event failed", { jobId, error: String(e) });
      }
      if (last) return;
    }
  }
}

const LOST = "lost contact with the shard continuing the job";
