import { ApiError } from "../http/api-error.js";
import { log } from "../http/log.js";
import { errorResponse } from "../http/on-error.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { toBase64url } from "../../shared/protocol/node-identity.js";
import { closeSocket } from "../durable/socket.js";
import { parseTabFrame } from "../../shared/protocol/fast-frames.js";
import {
  MAX_FRAME_BYTES,
  type CoordinatorMessage,
  type Hello,
  type TabMessage,
} from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION, protocolCompatibility } from "../../shared/protocol/version.js";
import { capBenchmark } from "../../shared/gpu/plausible.js";
import { publicNodeId } from "./public-id.js";
import type { RegionConfig } from "./region-config.js";
import type { RegionTimer } from "./region-timers.js";
import type { SocketAttachment, TabJobs, TabRecord, TabRegistry } from "./tab-registry.js";
import { floodPenaltyError, TabConnects } from "./tab-connects.js";
import { statusBucket, type TokenBucket } from "./frame-budget.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";
import { verifyIdentity } from "./verify-identity.js";
import { ANONYMOUS_PREFIX } from "../../shared/trust/anonymous.js";

/** A frame from a registered tab that is about its work (everything but hello). */
export type TabFrame = Exclude<TabMessage, { type: "hello" }>;

/**
 * What happened on the tab sockets, for the job state machine. The channel never calls into job
 * code: it answers with these and the Durable Object forwards them (region-do.ts).
 */
export type TabEvent =
  | { type: "joined"; tab: TabRecord }
  | { type: "left"; tab: TabRecord; why: string }
  | { type: "frame"; tab: TabRecord; msg: TabFrame };

const LIVENESS: RegionTimer = { kind: "liveness" };
const HELLO: RegionTimer = { kind: "hello" };

/** WebSocket readyState OPEN. */
const OPEN = 1;
/**
 * Close codes with which a tab link (edge/tab-link) refused its tab: the link closed both sockets,
 * so the Region learns of the refusal only from the code, and counts it as the tab's fault.
 */
const LINK_REFUSALS: ReadonlySet<number> = new Set([
  CloseCode.RateLimited,
  CloseCode.FrameTooLarge,
]);

/**
 * The contributors' sockets: the upgrade (per-address limit, identity challenge), hello and
 * registration, frames parsed at the boundary, sending, closing with typed reasons, and noticing
 * tabs that fell silent. Owns the tab registry's membership: tabs enter it here and leave through
 * `forget`.
 */
export class TabChannel {
  /** Sockets this channel closed: frames still in flight from them cost nothing (bench:abuse). */
  private readonly rejected = new WeakSet<WebSocket>();
  /** Sockets opened per address per minute (made on first use: it creates its table). */
  private connectsTable: TabConnects | null = null;
  /**
   * Each registered socket's tab, so a frame finds its tab without decoding the socket's
   * attachment (a native call and a structured-clone read per frame). Memory only: after the
   * object wakes from hibernation it is empty and fills again from the attachments, one socket at
   * its first frame (`tabOf`).
   */
  private readonly bySocket = new WeakMap<WebSocket, TabRecord>();
  /**
   * Each socket's budget of `status` frames (frame-budget.ts `statusBucket`: counted here, on the
   * parsed frame). Memory only: after hibernation a socket starts with a full bucket, as it would
   * have anyway — the object hibernates after ~10 s without a frame, and a bucket refills in 6 s.
   */
  private readonly statusBudget = new WeakMap<WebSocket, TokenBucket>();

  constructor(
    private readonly ctx: DurableObjectState,
    readonly tabs: TabRegistry,
    private readonly timers: TimerTable<RegionTimer>,
    private readonly config: RegionConfig,
    private readonly trust: TabTrust,
  ) {}

  private get connects(): TabConnects {
    this.connectsTable ??= new TabConnects(this.ctx.storage.sql, this.config.tabConnectsPerMinute);
    return this.connectsTable;
  }

  /** WebSocket upgrade from the Worker, which put the tab's location and IP in headers. */
  async accept(request: Request): Promise<Response> {
    const ip = request.headers.get("x-tabgrid-node-ip") ?? "unknown";
    const penaltyS = this.connects.penaltyS(ip);
    if (penaltyS !== null) {
      return errorResponse(
        floodPenaltyError(penaltyS),
        request.headers.get("x-request-id") ?? "unknown",
      );
    }
    // Sockets of this address that never said hello in time give their slots back first.
    this.closeSilent(this.ctx.getWebSockets(ip));
    const open = this.ctx.getWebSockets(ip).filter((ws) => ws.readyState === OPEN);
    if (open.length >= this.config.maxNodesPerIp) {
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
    const waitS = this.connects.take(ip);
    if (waitS !== null) {
      return errorResponse(
        new ApiError(
          429,
          "rate_limit_error",
          `Too many contributor connections opened from this address (limit ${this.config.tabConnectsPerMinute} per minute).`,
          null,
          "too_many_connects",
          { "retry-after": String(waitS) },
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
      openedAt: Date.now(),
    };
    this.ctx.acceptWebSocket(server, [ip]);
    server.serializeAttachment(attachment);
    server.send(JSON.stringify({ type: "challenge", nonce } satisfies CoordinatorMessage));
    if (!this.timers.has(HELLO)) {
      await this.timers.set(HELLO, Date.now() + this.config.helloDeadlineMs);
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The hello deadline's timer: close sockets that are still silent, re-arm for the rest. */
  async sweepSilentSockets(): Promise<void> {
    const pending = this.closeSilent(this.ctx.getWebSockets());
    if (pending !== null) await this.timers.set(HELLO, pending + this.config.helloDeadlineMs);
  }

  /**
   * Close the sockets among `sockets` that have not said hello within the deadline; returns when
   * the oldest one still pending was opened (null when none is).
   */
  private closeSilent(sockets: WebSocket[]): number | null {
    const now = Date.now();
    let oldest: number | null = null;
    for (const ws of sockets) {
      const att = ws.deserializeAttachment() as SocketAttachment | null;
      if (!att || att.nodeId || ws.readyState !== OPEN) continue;
      // Sockets accepted before the deadline existed carry no openedAt: they count from now.
      const openedAt = att.openedAt ?? now;
      if (now - openedAt >= this.config.helloDeadlineMs) {
        this.trust.rejections.note(null, "no hello before the deadline", { ip: att.ip });
        closeSocket(ws, CloseCode.HelloTimeout, "no hello within the deadline");
      } else {
        oldest = oldest === null ? openedAt : Math.min(oldest, openedAt);
      }
    }
    return oldest;
  }

  /**
   * One frame from a socket: parsed, hello handled here, anything else handed on. Each socket here
   * is a tab link's (edge/tab-link), which already kept the tab within its frame budget and byte
   * limit: a second frame budget here would see the link's frames bunched by transit and misfire.
   * The status budget is counted here, on the parsed type, as no text check could
   * (frame-budget.ts `statusBucket` says why).
   */
  async receive(ws: WebSocket, raw: string | ArrayBuffer): Promise<TabEvent[]> {
    if (this.rejected.has(ws)) return [];
    // Sizes are UTF-8 bytes on the wire, not UTF-16 string length.
    const parsed = parseTabFrame(raw, MAX_FRAME_BYTES);
    if (!parsed.ok) {
      const code = parsed.tooLarge ? CloseCode.FrameTooLarge : CloseCode.BadFrame;
      return this.reject(ws, code, parsed.reason);
    }
    const msg = parsed.msg;
    if (msg.type === "hello") return this.hello(ws, msg);
    const tab = this.tabOf(ws);
    if (!tab) return this.reject(ws, CloseCode.NotRegistered, "send hello first");
    if (msg.type === "status" && !this.statusTaken(ws)) {
      // A flooder's address waits out a penalty before its next socket, as after the link's 4009.
      this.penalize(ws);
      return this.reject(ws, CloseCode.RateLimited, "status frames over the socket's budget");
    }
    tab.lastSeen = Date.now();
    return [{ type: "frame", tab, msg }];
  }

  /** The tab closed its socket: close back so it sees a clean close rather than 1006. */
  closed(ws: WebSocket, code: number, reason: string): TabEvent[] {
    closeSocket(ws, code, reason);
    if (LINK_REFUSALS.has(code) && !this.rejected.has(ws)) {
      // A flooder's address waits out a penalty before its next socket (tab-connects.ts).
      if (code === CloseCode.RateLimited) this.penalize(ws);
      return this.reject(ws, code, reason);
    }
    return this.dropped(ws, "tab disconnected");
  }

  /** Take one token of the socket's status budget; false when it ran dry. */
  private statusTaken(ws: WebSocket): boolean {
    let bucket = this.statusBudget.get(ws);
    if (!bucket) this.statusBudget.set(ws, (bucket = statusBucket()));
    return bucket.take();
  }

  private penalize(ws: WebSocket): void {
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    if (!att) return;
    this.connects.penalize(att.ip);
  }

  failed(ws: WebSocket): TabEvent[] {
    return this.dropped(ws, "tab socket failed");
  }

  /** Send a frame; false when the socket is gone (the caller treats the tab as left). */
  send(tab: TabRecord, msg: CoordinatorMessage): boolean {
    try {
      tab.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /** Take a tab out of the registry (unless a newer connection of the same identity replaced it). */
  forget(tab: TabRecord): void {
    if (this.tabs.get(tab.tabId) === tab) this.tabs.remove(tab.tabId);
  }

  /** After eviction: rebind surviving sockets to their tabs and their jobs. */
  async restore(sockets: WebSocket[], jobsOf: (tabId: string) => TabJobs): Promise<void> {
    this.tabs.restore(sockets, jobsOf);
    await this.ensureLiveness();
  }

  /**
   * Tabs silent (no frame, no auto-answered ping) for 1.5 status intervals — three missed pings,
   * as tabs ping every half interval — are presumed gone and closed. Sweeping every quarter
   * interval finds one at most 1.75 intervals after it fell silent: within the 2-interval
   * detection target.
   */
  async sweep(): Promise<TabEvent[]> {
    const now = Date.now();
    const stale: TabRecord[] = [];
    for (const tab of this.tabs.all()) {
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(tab.ws)?.getTime() ?? 0;
      const silentMs = now - Math.max(tab.lastSeen, pinged);
      if (silentMs > 1.5 * this.config.statusIntervalMs) stale.push(tab);
    }
    if (this.tabs.size() > stale.length) {
      await this.timers.set(LIVENESS, now + this.config.statusIntervalMs / 4);
    }
    return stale.map((tab) => {
      closeSocket(tab.ws, CloseCode.Stale, "no heartbeat for 1.5 status intervals");
      return { type: "left", tab, why: "missed heartbeats" };
    });
  }

  private async hello(ws: WebSocket, hello: Hello): Promise<TabEvent[]> {
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
    let tabId = `${ANONYMOUS_PREFIX}${crypto.randomUUID()}`;
    if (hello.identity) {
      const proof = await verifyIdentity(hello.identity, hello.nodeId, att.nonce);
      if (!proof.ok) return this.reject(ws, CloseCode.IdentityRejected, proof.reason);
      tabId = proof.nodeId;
    }
    const events: TabEvent[] = [];
    const previous = this.tabs.get(tabId);
    if (previous && previous.ws !== ws) {
      // The same tab reconnected (e.g. after a network change) before its old socket closed.
      closeSocket(previous.ws, CloseCode.Replaced, "replaced by a newer connection");
      this.forget(previous);
      events.push({ type: "left", tab: previous, why: "tab reconnected" });
    }
    ws.serializeAttachment({
      ...att,
      nodeId: tabId,
      protocol: hello.protocol,
    } satisfies SocketAttachment);
    const publicId = await publicNodeId(tabId);
    this.trust.seen(tabId);
    const gpu = hello.gpu?.benchmark ? this.plausibleGpu(hello, { tabId, publicId }) : hello.gpu;
    const tab = this.tabs.register(
      gpu === hello.gpu ? hello : { ...hello, gpu },
      tabId,
      publicId,
      ws,
      att,
    );
    this.send(tab, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      nodeId: tabId,
      statusIntervalMs: this.config.statusIntervalMs,
    });
    log("info", "tab registered", { tab: tab.publicId, models: tab.models });
    await this.ensureLiveness();
    events.push({ type: "joined", tab });
    return events;
  }

  /** The tab's benchmark claim capped to what its claimed GPU class can measure (a fault if not). */
  private plausibleGpu(hello: Hello, who: { tabId: string; publicId: string }): Hello["gpu"] {
    const gpu = hello.gpu;
    if (!gpu?.benchmark) return gpu;
    const { benchmark, capped } = capBenchmark(gpu.class, gpu.profile, gpu.benchmark);
    if (!capped) return gpu;
    this.trust.fault(who, "implausible benchmark", {
      class: gpu.class,
      claimedGBs: gpu.benchmark.bandwidthGBs,
      claimedGflops: gpu.benchmark.matmulGflops,
    });
    return { ...gpu, benchmark };
  }

  private async ensureLiveness(): Promise<void> {
    if (!this.timers.has(LIVENESS) && this.tabs.size() > 0) {
      await this.timers.set(LIVENESS, Date.now() + this.config.statusIntervalMs / 4);
    }
  }

  /**
   * The registered tab of a socket: from memory when this socket was seen since the object woke,
   * else from its attachment (remembered). A remembered tab counts only while it is still the
   * registry's tab of that id on that socket (a replaced or forgotten tab is not).
   */
  private tabOf(ws: WebSocket): TabRecord | undefined {
    const known = this.bySocket.get(ws);
    if (known && known.ws === ws && this.tabs.get(known.tabId) === known) return known;
    const tab = this.tabs.bySocket(ws);
    if (tab) this.bySocket.set(ws, tab);
    else this.bySocket.delete(ws);
    return tab;
  }

  private dropped(ws: WebSocket, why: string): TabEvent[] {
    const tab = this.tabOf(ws);
    return tab ? [{ type: "left", tab, why }] : [];
  }

  private reject(ws: WebSocket, code: number, reason: string): TabEvent[] {
    this.rejected.add(ws);
    const tab = this.tabOf(ws);
    if (tab) this.trust.fault(tab, reason, { closeCode: code });
    else this.trust.rejections.note(null, reason, { closeCode: code });
    closeSocket(ws, code, reason);
    return this.dropped(ws, reason);
  }
}
