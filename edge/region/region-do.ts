import { DurableObject } from "cloudflare:workers";
import type { AppEnv } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { log } from "../http/log.js";
import { errorResponse } from "../http/on-error.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import {
  MAX_FRAME_BYTES,
  PING_FRAME,
  PONG_FRAME,
  TabMessageSchema,
  parseFrame,
  type CoordinatorMessage,
  type Hello,
} from "../../shared/protocol/node-messages.js";
import { toBase64url } from "../../shared/protocol/node-identity.js";
import { verifyIdentity } from "./verify-identity.js";
import { PROTOCOL_VERSION, protocolCompatibility } from "../../shared/protocol/version.js";
import { AlarmScheduler } from "./alarm-scheduler.js";
import type { OpenJobResult, SubscribeResult } from "./job-events.js";
import { JobLifecycle } from "./job-lifecycle.js";
import { jobView, type JobView } from "./job-view.js";
import type { JobMeta } from "./job-store.js";
import { NodeRegistry, type SocketAttachment } from "./node-registry.js";
import { publicNodeId } from "./public-id.js";
import { regionConfig, type RegionConfig } from "./region-config.js";
import { listingOf, type NodeListing, type RegionSummary } from "./region-views.js";
import { directoryStub } from "../directory/directory-client.js";
import { isRegionHint, type RegionHint } from "../../shared/geo/regions.js";
import { migrate } from "./sql-schema.js";

/**
 * One Region Durable Object per location hint: the registry of tabs connected to it, matching,
 * durable job records, leases and the token relay. Tabs connect with the WebSocket hibernation API
 * so idle tabs cost nothing; pings are answered by auto-response without waking the object. All
 * state that matters is in SQLite or socket attachments, so eviction loses nothing.
 */
export class RegionDurableObject extends DurableObject<AppEnv> {
  private readonly config: RegionConfig;
  private readonly nodes: NodeRegistry;
  private timers!: AlarmScheduler;
  private lifecycle!: JobLifecycle;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.config = regionConfig(env);
    this.nodes = new NodeRegistry(ctx.storage.sql);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    // State is loaded once before any event is delivered; a failure is rethrown so the object
    // resets instead of running half-initialised.
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage.sql);
      this.timers = new AlarmScheduler(ctx.storage);
      // Region objects are named by their location hint (region-stub.ts); test objects with other
      // names act as the default region.
      const name = ctx.id.name ?? "";
      const region: RegionHint = isRegionHint(name) ? name : "wnam";
      this.lifecycle = new JobLifecycle(
        ctx,
        this.nodes,
        this.timers,
        this.config,
        region,
        (summary) => directoryStub(env).report(region, summary),
      );
      await this.lifecycle.restore(ctx.getWebSockets());
    });
  }

  /** WebSocket upgrade from the Worker, which put the tab's location and IP in headers. */
  override async fetch(request: Request): Promise<Response> {
    const ip = request.headers.get("x-tabgrid-node-ip") ?? "unknown";
    if (this.ctx.getWebSockets(ip).length >= this.config.maxNodesPerIp) {
      return errorResponse(
        new ApiError(
          429,
          "rate_limit_error",
          `Too many contributor connections from this address (limit ${this.config.maxNodesPerIp}).`,
          null,
          "too_many_nodes",
          { "retry-after": "60" },
        ),
        request.headers.get("x-request-id") ?? "unknown",
      );
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const lat = Number(request.headers.get("x-tabgrid-node-lat"));
    const lon = Number(request.headers.get("x-tabgrid-node-lon"));
    const hasLoc =
      request.headers.has("x-tabgrid-node-lat") && Number.isFinite(lat) && Number.isFinite(lon);
    const nonce = toBase64url(crypto.getRandomValues(new Uint8Array(24)));
    const attachment: SocketAttachment = {
      nodeId: null,
      ip,
      nonce,
      lat: hasLoc ? lat : null,
      lon: hasLoc ? lon : null,
    };
    this.ctx.acceptWebSocket(server, [ip]);
    server.serializeAttachment(attachment);
    server.send(JSON.stringify({ type: "challenge", nonce } satisfies CoordinatorMessage));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const size = typeof raw === "string" ? raw.length : raw.byteLength;
    if (size > MAX_FRAME_BYTES) return this.reject(ws, CloseCode.FrameTooLarge, "frame too large");
    const parsed = parseFrame(TabMessageSchema, raw);
    if (!parsed.ok) return this.reject(ws, CloseCode.BadFrame, parsed.reason);
    const msg = parsed.msg;
    if (msg.type === "hello") return this.onHello(ws, msg);
    const node = this.nodes.bySocket(ws);
    if (!node) return this.reject(ws, CloseCode.NotRegistered, "send hello first");
    try {
      await this.lifecycle.onTabMessage(node, msg);
    } catch (e) {
      throw e;
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Close back so the tab sees a clean close rather than 1006; 1005/1006 cannot be sent.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
    await this.dropSocket(ws, "tab disconnected");
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.dropSocket(ws, "tab socket failed");
  }

  override async alarm(): Promise<void> {
    for (const name of await this.timers.takeDue()) {
      const stale = await this.lifecycle.onTimer(name);
      for (const node of stale) {
        this.closeSocket(node.ws, CloseCode.Stale, "no heartbeat for two status intervals");
        await this.lifecycle.nodeLeft(node, "missed heartbeats");
      }
    }
  }

  // ---- RPC from the Worker -------------------------------------------------------------------

  /** Write the job, assign it to an idle tab that has the model, and stream its events back. */
  async openJob(spec: JobSpec, meta: JobMeta, queue: boolean): Promise<OpenJobResult> {
    return this.lifecycle.open(spec, meta, queue);
  }

  /** Read a job's events from character `after` of its text (resume after a dropped stream). */
  async subscribe(jobId: string, after: number, owner: string | null): Promise<SubscribeResult> {
    return this.lifecycle.subscribe(jobId, after, owner);
  }

  /** The Worker stopped reading (client went away, or it re-subscribed on a fresh stream). */
  async release(jobId: string, readerId: string): Promise<void> {
    this.lifecycle.release(jobId, readerId);
  }

  async getJob(jobId: string, owner: string | null): Promise<JobView | null> {
    const row = this.lifecycle.visibleJob(jobId, owner);
    return row ? jobView(row) : null;
  }

  /** Cancel a job and stop its tab. Returns the job as it ended, or null if unknown. */
  async cancelJob(jobId: string, reason: string, owner: string | null): Promise<JobView | null> {
    if (!this.lifecycle.visibleJob(jobId, owner)) return null;
    await this.lifecycle.cancel(jobId, reason);
    const row = this.lifecycle.visibleJob(jobId, owner);
    return row ? jobView(row) : null;
  }

  async summary(): Promise<RegionSummary> {
    return this.lifecycle.summary();
  }

  async listNodes(): Promise<NodeListing[]> {
    return [...this.nodes.all()].map(listingOf);
  }

  /** Job counts by state, for operators and for tests that check nothing was lost. */
  async jobCounts(): Promise<Record<string, number>> {
    return this.lifecycle.counts();
  }

  // ---- contributor channel -------------------------------------------------------------------

  private async onHello(ws: WebSocket, hello: Hello): Promise<void> {
    const compat = protocolCompatibility(hello.protocol);
    if (compat === "too_old") {
      return this.reject(
        ws,
        CloseCode.ProtocolTooOld,
        `protocol ${hello.protocol} is too old; reload the page`,
      );
    }
    if (compat === "too_new") {
      return this.reject(
        ws,
        CloseCode.ProtocolTooNew,
        `coordinator speaks protocol ${PROTOCOL_VERSION}; retry later`,
      );
    }
    const att = ws.deserializeAttachment() as SocketAttachment;
    if (att.nodeId) return this.reject(ws, CloseCode.BadFrame, "hello sent twice");
    // An id is only reused with proof; without one this connection gets a fresh id, so no tab
    // can take over another's identity or jobs.
    let nodeId = `a_${crypto.randomUUID()}`;
    if (hello.identity) {
      const proof = await verifyIdentity(hello.identity, hello.nodeId, att.nonce);
      if (!proof.ok) return this.reject(ws, CloseCode.IdentityRejected, proof.reason);
      nodeId = proof.nodeId;
    }
    const previous = this.nodes.get(nodeId);
    if (previous && previous.ws !== ws) {
      // The same tab reconnected (e.g. after a network change) before its old socket closed.
      this.closeSocket(previous.ws, CloseCode.Replaced, "replaced by a newer connection");
      await this.lifecycle.nodeLeft(previous, "tab reconnected");
    }
    ws.serializeAttachment({ ...att, nodeId } satisfies SocketAttachment);
    const node = this.nodes.register(hello, nodeId, await publicNodeId(nodeId), ws, att);
    this.lifecycle.send(node, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      nodeId,
      statusIntervalMs: this.config.statusIntervalMs,
    });
    log("info", "node registered", { node: node.publicId, models: node.models });
    await this.lifecycle.nodeJoined(node);
  }

  private async dropSocket(ws: WebSocket, why: string): Promise<void> {
    const node = this.nodes.bySocket(ws);
    if (node) await this.lifecycle.nodeLeft(node, why);
  }

  private async reject(ws: WebSocket, code: number, reason: string): Promise<void> {
    log("warn", "closing tab socket", { code, reason });
    this.closeSocket(ws, code, reason);
    await this.dropSocket(ws, reason);
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}
