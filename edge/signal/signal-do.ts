import { DurableObject } from "cloudflare:workers";
import { closeSocket, parseFrame } from "../durable/socket.js";
import { startUp, type Ready } from "../durable/start-up.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
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

/**
 * PeerJS-compatible signalling (what peerjs-server's webSocketServer and message handlers do), one
 * object per shard of peer ids. Peers connect with the hibernation API, so a peer waiting for its
 * introduction costs nothing; the client's 5 s HEARTBEAT is answered by auto-response without
 * waking the object, and its timestamp is the liveness check. Each socket's peer id and token live
 * in its attachment (tag = peer id), so after eviction routing still works; queued signals live in
 * SQLite and expire on the object's alarm.
 */
export interface PeerAttachment {
  id: string;
  token: string;
  /** When the socket was accepted (liveness until the first heartbeat). */
  since: number;
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
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];

    // Errors go to the peer the way peerjs-server sends them (a typed message), then a typed close.
    const refuse = (msg: PeerServerMessage, code: number, reason: string) => {
      server.accept();
      server.send(JSON.stringify(msg));
      server.close(code, reason);
      return new Response(null, { status: 101, webSocket: client });
    };
    if (!id || !token || !key) {
      const msg = "No id, token, or key supplied to websocket server";
      return refuse({ type: "ERROR", payload: { msg } }, SignalCloseCode.BadQuery, msg);
    }
    if (key !== PEERJS_KEY) {
      const msg = `Invalid key provided`;
      return refuse({ type: "INVALID-KEY", payload: { msg } }, SignalCloseCode.InvalidKey, msg);
    }
    if (!PeerIdSchema.safeParse(id).success || token.length > 64) {
      const msg = "Invalid id or token (ids come from GET /v1/signal/peerjs/id)";
      return refuse({ type: "ERROR", payload: { msg } }, SignalCloseCode.BadQuery, msg);
    }
    for (const old of this.ctx.getWebSockets(id)) {
      const att = old.deserializeAttachment() as PeerAttachment;
      if (att.token !== token) {
        const msg = "ID is taken";
        return refuse({ type: "ID-TAKEN", payload: { msg } }, SignalCloseCode.IdTaken, msg);
      }
      // The same peer reconnected with its token: the newer socket wins.
      closeSocket(old, SignalCloseCode.Replaced, "replaced by a newer connection");
    }
    this.ctx.acceptWebSocket(server, [id]);
    server.serializeAttachment({ id, token, since: Date.now() } satisfies PeerAttachment);
    server.send(JSON.stringify({ type: "OPEN" } satisfies PeerServerMessage));
    for (const signal of this.queue.take(id)) server.send(JSON.stringify(signal));
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    await this.ready();
    const parsed = parseFrame(PeerClientMessageSchema, raw, MAX_SIGNAL_FRAME_BYTES);
    if (!parsed.ok) {
      const code = parsed.tooLarge ? SignalCloseCode.FrameTooLarge : SignalCloseCode.BadFrame;
      return closeSocket(ws, code, `bad frame: ${parsed.reason}`);
    }
    const msg = parsed.msg;
    // `src` is who this socket registered as, never what the frame claims.
    const src = (ws.deserializeAttachment() as PeerAttachment).id;
    switch (msg.type) {
      case "HEARTBEAT":
        return; // Only if it arrived in another spelling than the auto-response pair.
      case "LEAVE":
        if (!msg.dst) return closeSocket(ws, SignalCloseCode.Normal, "left");
        return this.relay({ type: "LEAVE", src, dst: msg.dst });
      case "OFFER":
      case "ANSWER":
      case "CANDIDATE":
        return this.relay({ type: msg.type, src, dst: msg.dst, payload: msg.payload });
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

  private relay(signal: RelayedSignal): void {
    if (this.sendTo(signal.dst, signal)) return;
    // peerjs-server drops LEAVE / EXPIRE for absent peers and queues the rest.
    if (signal.type === "LEAVE" || signal.type === "EXPIRE") return;
    if (!this.queue.push(signal, Date.now())) {
      log("warn", "signal queue full", { dst: signal.dst });
      return;
    }
    void this.scheduleAlarm();
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
