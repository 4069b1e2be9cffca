import { DurableObject } from "cloudflare:workers";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import type { JobError, JobSpec } from "../../shared/protocol/job.js";
import {
  MAX_FRAME_BYTES,
  PING_FRAME,
  PONG_FRAME,
  TabMessageSchema,
  parseFrame,
  type CoordinatorMessage,
  type Hello,
  type TabMessage,
} from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION, protocolCompatibility } from "../../shared/protocol/version.js";
import type { OpenJobResult } from "./job-events.js";
import { JobRelay } from "./job-relay.js";
import { JobStore } from "./job-store.js";
import { NodeRegistry, type NodeRecord, type SocketAttachment } from "./node-registry.js";
import { migrate } from "./sql-schema.js";
import { publicNodeId } from "./public-id.js";
import type { NodeListing, RegionSummary } from "./region-views.js";
import { listingOf, summarise } from "./region-views.js";

const DEFAULT_STATUS_INTERVAL_MS = 15_000;

/**
 * One Region Durable Object per location hint: the registry of tabs connected to it, matching,
 * job records and the token relay. Tabs connect with the WebSocket hibernation API so idle tabs
 * cost nothing; pings are answered by auto-response without waking the object.
 */
export class RegionDurableObject extends DurableObject<AppEnv> {
  private readonly nodes: NodeRegistry;
  private readonly jobs: JobStore;
  private readonly relay = new JobRelay();

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.nodes = new NodeRegistry(ctx.storage.sql);
    this.jobs = new JobStore(ctx.storage.sql);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    // State is loaded once before any event is delivered; a failure here is rethrown so the
    // object is reset instead of running half-initialised.
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage.sql);
      // Jobs whose stream died with the previous instance cannot be resumed yet: fail them so no
      // job stays "streaming" forever.
      this.nodes.restore(ctx.getWebSockets(), (nodeId) => this.jobs.activeFor(nodeId));
      for (const node of this.nodes.all()) {
        if (node.jobId && !this.relay.has(node.jobId)) {
          this.jobs.fail(node.jobId, "node_gone");
          this.send(node, {
            type: "job.cancel",
            jobId: node.jobId,
            reason: "coordinator restarted",
          });
        }
      }
    });
  }

  private get statusIntervalMs(): number {
    return Number(this.env.STATUS_INTERVAL_MS) || DEFAULT_STATUS_INTERVAL_MS;
  }

  /** WebSocket upgrade from the Worker; the node's location arrives in a header it set. */
  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const lat = Number(request.headers.get("x-tabgrid-node-lat"));
    const lon = Number(request.headers.get("x-tabgrid-node-lon"));
    const attachment: SocketAttachment = {
      nodeId: null,
      lat: request.headers.has("x-tabgrid-node-lat") && Number.isFinite(lat) ? lat : null,
      lon: request.headers.has("x-tabgrid-node-lon") && Number.isFinite(lon) ? lon : null,
    };
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment(attachment);
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
    this.onTabMessage(node, msg);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Close back so the tab sees a clean close rather than 1006; 1005 cannot be sent, map it.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
    this.dropSocket(ws, "tab disconnected");
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.dropSocket(ws, "tab socket failed");
  }

  // ---- RPC from the Worker -------------------------------------------------------------------

  /** Write the job, assign it to an idle tab that has the model, and stream its events back. */
  async openJob(spec: JobSpec, requestId: string): Promise<OpenJobResult> {
    const choice = this.nodes.pick(spec.model);
    if ("none" in choice) {
      const error: JobError =
        choice.none === "model_not_served"
          ? {
              code: "model_not_served",
              message: `No connected tab serves model '${spec.model}'. GET /v1/models lists the models served now.`,
            }
          : {
              code: "no_capacity",
              message: `Every tab serving '${spec.model}' is busy; retry shortly.`,
            };
      return { ok: false, error };
    }
    const node = choice.node;
    this.jobs.create(spec, requestId, node.nodeId);
    node.lastAssignedAt = Date.now();
    this.nodes.update(node, { jobId: spec.id, state: "busy" });
    const events = this.relay.open(spec.id, () => this.cancelJob(spec.id, "client went away"));
    if (!this.send(node, { type: "job.assign", job: spec })) {
      this.failJob(node, spec.id, { code: "node_gone", message: "the chosen tab disconnected" });
    }
    log("info", "job assigned", { requestId, jobId: spec.id, node: node.publicId });
    return { ok: true, jobId: spec.id, nodeId: node.publicId, events };
  }

  /** Stop a job: tell its tab to interrupt generation. Safe to call twice. */
  async cancelJob(jobId: string, reason: string): Promise<boolean> {
    const row = this.jobs.get(jobId);
    if (!row || !this.jobs.cancel(jobId)) return false;
    this.relay.close(jobId);
    const node = row.node_id ? this.nodes.get(row.node_id) : undefined;
    // The tab stays bound to the job until it confirms with job.done(abort) or job.error, so it is
    // not handed a new job while its engine is still stopping.
    if (node && node.jobId === jobId) this.send(node, { type: "job.cancel", jobId, reason });
    log("info", "job cancelled", { jobId, reason });
    return true;
  }

  async summary(): Promise<RegionSummary> {
    return summarise(this.nodes.all());
  }

  async listNodes(): Promise<NodeListing[]> {
    return [...this.nodes.all()].map(listingOf);
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
    const nodeId = hello.nodeId ?? crypto.randomUUID();
    const previous = this.nodes.get(nodeId);
    if (previous && previous.ws !== ws) {
      // The same tab reconnected (e.g. after a network change) before its old socket closed.
      this.releaseJob(previous, "tab reconnected");
      this.reject(previous.ws, CloseCode.Replaced, "replaced by a newer connection");
    }
    ws.serializeAttachment({ ...att, nodeId } satisfies SocketAttachment);
    const node = this.nodes.register(hello, nodeId, await publicNodeId(nodeId), ws, att);
    this.send(node, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      nodeId,
      statusIntervalMs: this.statusIntervalMs,
    });
    log("info", "node registered", { node: node.publicId, models: node.models });
  }

  private onTabMessage(node: NodeRecord, msg: Exclude<TabMessage, Hello>): void {
    switch (msg.type) {
      case "status": {
        // A tab reporting idle while bound to a job it no longer has (e.g. after a cancel it
        // could not confirm) is free again.
        const jobId =
          msg.state === "idle" && node.jobId && !this.relay.has(node.jobId) ? null : node.jobId;
        this.nodes.update(node, { state: msg.state, models: msg.models, jobId });
        return;
      }
      case "job.accept":
        if (node.jobId === msg.jobId) this.jobs.markStreaming(msg.jobId);
        return;
      case "job.delta":
        if (node.jobId !== msg.jobId || !this.relay.has(msg.jobId)) return;
        if (!this.jobs.recordDelta(msg.jobId, msg.seq, msg.text.length)) {
          log("warn", "delta out of order dropped", { jobId: msg.jobId, seq: msg.seq });
          return;
        }
        this.relay.push(msg.jobId, { type: "delta", text: msg.text });
        return;
      case "job.done":
        if (node.jobId !== msg.jobId) return;
        if (this.relay.has(msg.jobId)) {
          this.jobs.finish(msg.jobId, msg.finishReason, msg.usage);
          this.relay.push(msg.jobId, {
            type: "done",
            finishReason: msg.finishReason,
            usage: msg.usage,
          });
          node.jobsServed += 1;
        }
        this.nodes.update(node, { jobId: null, state: "idle" });
        return;
      case "job.error":
        if (node.jobId !== msg.jobId) return;
        this.failJob(node, msg.jobId, msg.error);
        return;
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  }

  private failJob(node: NodeRecord, jobId: string, error: JobError): void {
    this.jobs.fail(jobId, error.code);
    this.relay.push(jobId, { type: "error", error });
    if (node.jobId === jobId) this.nodes.update(node, { jobId: null, state: "idle" });
  }

  /** A tab is leaving or replaced: its job fails with a clear error (failover comes later). */
  private releaseJob(node: NodeRecord, why: string): void {
    if (!node.jobId) return;
    const jobId = node.jobId;
    this.jobs.fail(jobId, "node_gone");
    this.relay.push(jobId, { type: "error", error: { code: "node_gone", message: why } });
    node.jobId = null;
  }

  private dropSocket(ws: WebSocket, why: string): void {
    const node = this.nodes.bySocket(ws);
    if (!node) return;
    this.releaseJob(node, `the serving tab left: ${why}`);
    this.nodes.remove(node.nodeId);
    log("info", "node left", { node: node.publicId, why });
  }

  private send(node: NodeRecord, msg: CoordinatorMessage): boolean {
    try {
      node.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  private reject(ws: WebSocket, code: number, reason: string): void {
    log("warn", "closing tab socket", { code, reason });
    const node = this.nodes.bySocket(ws);
    if (node) {
      this.releaseJob(node, `the serving tab was disconnected: ${reason}`);
      this.nodes.remove(node.nodeId);
    }
    try {
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}
