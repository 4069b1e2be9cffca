import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config.js";
import { closeSocket, parseFrame } from "../durable/socket.js";
import { startUp, type Ready } from "../durable/start-up.js";
import type { AppEnv } from "../env.js";
import {
  HEARTBEAT_FRAME,
  MAX_SIGNAL_FRAME_BYTES,
  PEERJS_KEY,
  PeerClientMessageSchema,
  PeerIdSchema,
  SignalCloseCode,
  type PeerServerMessage,
  type RelayedSignal,
} from "../../shared/protocol/peerjs-messages.js";
import { SIGNAL_MIGRATIONS, SignalQueue } from "./signal-queue.js";
import { fullBucket, spendFrame, type FrameBucket, type FrameBudget } from "./frame-budget.js";
import { checkPeerId, isIssuedPeerId } from "./peer-ids.js";
import { refuseSocket, refuseUnissued, refuseWithError } from "./refuse.js";

/** Header the Worker sets (from cf-connecting-ip, never from the client) naming the peer's address. */
export const PEER_ADDRESS_HEADER = "x-tabgrid-peer-ip";

/**
 * PeerJS-compatible signalling (what peerjs-server's webSocketServer and message handlers do), one
 * object per shard of peer ids. Peers connect with the hibernation API, so a peer waiting for its
 * introduction costs nothing; the client's 5 s HEARTBEAT is answered by auto-response without
 * waking the object, and its timestamp is the liveness check. Each socket's peer id and token live
 * in its attachment (tag = peer id), so after eviction routing still works; queued signals live in
 * SQLite and expire on the object's alarm.
 *
 * Bounded for strangers: only ids this server issued (peer-ids.ts) get a socket or a queue; one
 * address holds at most `limits.maxPeersPerIp` sockets here (tag `ip:<addr>`); each socket has a
 * frame budget (frame-budget.ts) kept in its attachment; and one sender holds only a share of an
 * absent peer's queue (signal-queue.ts).
 */
export interface PeerAttachment {
  id: string;
  token: string;
  /** When the socket was accepted (liveness until the first heartbeat). */
  since: number;
  /** The peer's address, as the Worker saw it. */
  addr: string;
  budget: FrameBucket;
}

/** Queued signals expire after this long (peerjs-server's default `expire_timeout`). */
export const SIGNAL_EXPIRE_MS = 5_000;
/** A peer with no heartbeat for this long is closed (peerjs-server's `alive_timeout`). */
export const SIGNAL_ALIVE_MS = 60_000;

export class SignalDurableObject extends DurableObject<AppEnv> {
  private readonly ready: Ready;
  private readonly queue: SignalQueue;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair(HEARTBEAT_FRAME, HEARTBEAT_FRAME),
    );
    this.queue = new SignalQueue(ctx.storage.sql);
    this.ready = startUp(ctx, { migrations: SIGNAL_MIGRATIONS });
  }

  /** The peer's WebSocket, forwarded by the Worker with the client's query string intact. */
  override async fetch(request: Request): Promise<Response> {
    await this.ready();
    const url = new URL(request.url);
    const id = url.searchParams.get("id") ?? "";
    const token = url.searchParams.get("token") ?? "";
    const key = url.searchParams.get("key") ?? "";
    const addr = request.headers.get(PEER_ADDRESS_HEADER) ?? "local";
    const limits = readConfig(this.env).signal;

    // Errors go to the peer the way peerjs-server sends them (a typed message), then a typed close.
    if (!id || !token || !key) {
      const msg = "No id, token, or key supplied to websocket server";
      return refuseWithError(SignalCloseCode.BadQuery, msg);
    }
    if (key !== PEERJS_KEY) {
      const msg = `Invalid key provided`;
      return refuseSocket(
        { type: "INVALID-KEY", payload: { msg } },
        SignalCloseCode.InvalidKey,
        msg,
      );
    }
    if (!PeerIdSchema.safeParse(id).success || token.length > 64) {
      const msg = "Invalid id or token (ids come from GET /v1/signal/peerjs/id)";
      return refuseWithError(SignalCloseCode.BadQuery, msg);
    }
    if (!limits.secret) {
      return refuseWithError(SignalCloseCode.Unavailable, "Signalling is not configured");
    }
    const refusal = refuseUnissued(await checkPeerId(limits.secret, id));
    if (refusal) return refusal;
    const replaced: WebSocket[] = [];
    for (const old of this.ctx.getWebSockets(id)) {
      const att = old.deserializeAttachment() as PeerAttachment;
      if (att.token !== token) {
        const msg = "ID is taken";
        return refuseSocket({ type: "ID-TAKEN", payload: { msg } }, SignalCloseCode.IdTaken, msg);
      }
      replaced.push(old);
    }
    const fromAddr = this.ctx
      .getWebSockets(addressTag(addr))
      .filter((ws) => !replaced.includes(ws));
    if (fromAddr.length >= limits.maxPeersPerIp) {
      const msg = `Too many signalling connections from this address (${limits.maxPeersPerIp})`;
      return refuseWithError(SignalCloseCode.TooManyPeers, msg);
    }
    // The same peer reconnected with its token: the newer socket wins.
    for (const old of replaced) {
      closeSocket(old, SignalCloseCode.Replaced, "replaced by a newer connection");
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const now = Date.now();
    this.ctx.acceptWebSocket(server, [id, addressTag(addr)]);
    server.serializeAttachment({
      id,
      token,
      since: now,
      addr,
      budget: fullBucket(frameBudget(this.env), now),
    } satisfies PeerAttachment);
    server.send(JSON.stringify({ type: "OPEN" } satisfies PeerServerMessage));
    for (const signal of this.queue.take(id)) server.send(JSON.stringify(signal));
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Frames are handled one after another (verifying an id awaits), so a peer's order is kept. */
  private tail: Promise<void> = Promise.resolve();

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    await this.ready();
    const att = ws.deserializeAttachment() as PeerAttachment;
    const now = Date.now();
    // Attachments from before budgets existed start with a full bucket.
    const budget = frameBudget(this.env);
    const spent = spendFrame(att.budget ?? fullBucket(budget, now), budget, now);
    if (!spent) {
      return closeSocket(ws, SignalCloseCode.FrameBudget, "frame budget exceeded; slow down");
    }
    ws.serializeAttachment({ ...att, budget: spent } satisfies PeerAttachment);
    const run = this.tail.then(() => this.handle(ws, att, raw));
    this.tail = run.catch(() => {});
    return run;
  }

  private async handle(
    ws: WebSocket,
    att: PeerAttachment,
    raw: string | ArrayBuffer,
  ): Promise<void> {
    const parsed = parseFrame(PeerClientMessageSchema, raw, MAX_SIGNAL_FRAME_BYTES);
    if (!parsed.ok) {
      const code = parsed.tooLarge ? SignalCloseCode.FrameTooLarge : SignalCloseCode.BadFrame;
      return closeSocket(ws, code, `bad frame: ${parsed.reason}`);
    }
    const msg = parsed.msg;
    // `src` is who this socket registered as, never what the frame claims.
    const src = att.id;
    const from = { src, addr: att.addr ?? "local" };
    switch (msg.type) {
      case "HEARTBEAT":
        return; // Only if it arrived in another spelling than the auto-response pair.
      case "LEAVE":
        if (!msg.dst) return closeSocket(ws, SignalCloseCode.Normal, "left");
        return this.relay({ type: "LEAVE", src, dst: msg.dst }, from);
      case "OFFER":
      case "ANSWER":
      case "CANDIDATE":
        return this.relay({ type: msg.type, src, dst: msg.dst, payload: msg.payload }, from);
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Close back so the peer sees a clean close rather than 1006.
    closeSocket(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeSocket(ws, 1011, "socket error");
  }

  /** Expire queued signals (telling their senders EXPIRE) and close peers without heartbeats. */
  override async alarm(): Promise<void> {
    await this.ready();
    const now = Date.now();
    for (const { src, dst } of this.queue.expire(now - SIGNAL_EXPIRE_MS)) {
      // As peerjs-server: the sender learns the destination never showed up.
      this.sendTo(src, { type: "EXPIRE", src: dst, dst: src });
    }
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as PeerAttachment;
      const seen = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? att.since;
      if (now - seen > SIGNAL_ALIVE_MS) {
        closeSocket(ws, SignalCloseCode.Normal, "no heartbeat");
      }
    }
    await this.scheduleAlarm();
  }

  private async relay(signal: RelayedSignal, from: { src: string; addr: string }): Promise<void> {
    if (this.sendTo(signal.dst, signal)) return;
    // peerjs-server drops LEAVE / EXPIRE for absent peers and queues the rest.
    if (signal.type === "LEAVE" || signal.type === "EXPIRE") return;
    // Only issued ids are waited for; for any other, or when this sender has used its share of the
    // peer's queue, the sender learns at once that the peer is unavailable (peerjs: EXPIRE).
    const secret = readConfig(this.env).signal.secret;
    const issued = secret !== null && (await isIssuedPeerId(secret, signal.dst));
    if (issued && this.sendTo(signal.dst, signal)) return; // It connected meanwhile.
    const refused = issued ? this.queue.push(signal, from.addr, Date.now()) : "not_issued";
    if (refused) {
      this.sendTo(from.src, { type: "EXPIRE", src: signal.dst, dst: from.src });
      return;
    }
    await this.scheduleAlarm();
  }

  private sendTo(id: string, msg: PeerServerMessage): boolean {
    let sent = false;
    for (const ws of this.ctx.getWebSockets(id)) {
      try {
        ws.send(JSON.stringify(msg));
        sent = true;
      } catch {
        closeSocket(ws, 1011, "send failed");
      }
    }
    return sent;
  }

  /** One physical alarm: the next queue expiry, or a liveness sweep while peers are connected. */
  private async scheduleAlarm(): Promise<void> {
    const oldest = this.queue.oldest();
    const candidates: number[] = [];
    if (oldest !== null) candidates.push(oldest + SIGNAL_EXPIRE_MS);
    if (this.ctx.getWebSockets().length) candidates.push(Date.now() + SIGNAL_ALIVE_MS);
    if (!candidates.length) return;
    const at = Math.min(...candidates);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }
}

function addressTag(addr: string): string {
  return `ip:${addr}`.slice(0, 256);
}

function frameBudget(env: AppEnv): FrameBudget {
  const { framesPerSecond, frameBurst } = readConfig(env).signal;
  return { perSecond: framesPerSecond, burst: frameBurst };
}
