import { CloseCode, FATAL_CLOSE_CODES } from "../../shared/protocol/close-codes.js";
import {
  CoordinatorMessageSchema,
  PING_FRAME,
  PONG_FRAME,
  parseFrame,
  type CoordinatorMessage,
  type Hello,
  type TabMessage,
} from "../../shared/protocol/node-messages.js";
import { Backoff } from "./backoff.js";
import { browserTimers, type Timers } from "./timers.js";

/**
 * The contributor's WebSocket to the coordinator: answers the coordinator's `challenge` with
 * `hello` (signed with the tab's key, see tab-identity.ts) on every connection, keeps
 * the socket alive with PING_FRAME (answered by the Durable Object's auto-response, so an idle tab
 * never wakes it), sends `status` as a heartbeat at the interval `welcome` asks for, parses every
 * coordinator frame with the shared schema, and reconnects with jittered backoff — except after a
 * fatal close code, where only a reload can help.
 */

export type Connection = "connecting" | "connected" | "reconnecting" | "stopped" | "fatal";

/** The slice of the browser WebSocket this client uses (lets unit tests drive it by hand). */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

export interface TabSocketOptions {
  url: string;
  /**
   * Built fresh for each connection (state and models may have changed) from the nonce of the
   * coordinator's challenge, which the tab signs to keep its identity.
   */
  hello(nonce: string): Hello | Promise<Hello>;
  /**
   * The heartbeat frame, sent every `statusIntervalMs` after welcome. May come later (the tab-link
   * Worker asks the page for it); null skips this beat.
   */
  heartbeat(): TabMessage | null | Promise<TabMessage | null>;
  onMessage(msg: CoordinatorMessage): void;
  onConnection(c: Connection, detail?: string): void;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
  backoff?: Backoff;
  pingIntervalMs?: number;
  log?: (message: string) => void;
}

const OPEN = 1;

/**
 * What the contributor needs from its coordinator connection: `TabSocket` itself (in-process, unit
 * tests) or the page's end of the tab-link Worker that runs a `TabSocket` where background
 * throttling cannot stall it (web/tab-link/link-client.ts).
 */
export interface CoordinatorLink {
  start(): void;
  /** False when the frame could not be sent now (the caller decides). */
  send(msg: TabMessage): boolean;
  stop(reason?: string): void;
}

/** Makes the contributor's connection from the options a `TabSocket` takes. */
export type LinkFactory = (opts: TabSocketOptions) => CoordinatorLink;

export class TabSocket implements CoordinatorLink {
  private socket: SocketLike | null = null;
  private reconnectTimer: number | null = null;
  private pingTimer: number | null = null;
  private statusTimer: number | null = null;
  private stopped = false;
  private readonly timers: Timers;
  private readonly backoff: Backoff;
  private readonly createSocket: (url: string) => SocketLike;
  private readonly log: (message: string) => void;

  constructor(private readonly opts: TabSocketOptions) {
    this.timers = opts.timers ?? browserTimers;
    this.backoff = opts.backoff ?? new Backoff();
    this.createSocket = opts.createSocket ?? ((url) => new WebSocket(url));
    this.log = opts.log ?? ((m) => console.warn(`[tabgrid] ${m}`));
  }

  start(): void {
    this.stopped = false;
    this.open("connecting");
  }

  /** Send a frame if connected; returns false when it could not be sent (the caller decides). */
  send(msg: TabMessage): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  stop(reason = "contributor stopped"): void {
    this.stopped = true;
    this.clearTimers();
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.close(1000, reason.slice(0, 120));
    }
    this.opts.onConnection("stopped");
  }

  private open(phase: "connecting" | "reconnecting"): void {
    this.opts.onConnection(phase);
    const s = this.createSocket(this.opts.url);
    this.socket = s;
    s.onopen = () => {
      this.pingTimer = this.timers.setInterval(() => {
        if (s.readyState === OPEN) s.send(PING_FRAME);
      }, this.opts.pingIntervalMs ?? 10_000);
    };
    s.onmessage = (ev) => this.receive(ev.data);
    // Errors are always followed by close; reconnecting is decided there.
    s.onerror = () => {};
    s.onclose = (ev) => this.closed(s, ev.code, ev.reason);
  }

  private receive(data: unknown): void {
    if (data === PONG_FRAME) return;
    const parsed = parseFrame(
      CoordinatorMessageSchema,
      typeof data === "string" ? data : new ArrayBuffer(0),
    );
    if (!parsed.ok) {
      this.log(`ignored an invalid coordinator frame: ${parsed.reason}`);
      return;
    }
    const msg = parsed.msg;
    if (msg.type === "challenge") {
      const s = this.socket;
      void Promise.resolve(this.opts.hello(msg.nonce)).then(
        (hello) => {
          if (s && s === this.socket && s.readyState === OPEN) s.send(JSON.stringify(hello));
        },
        (err: unknown) => this.log(`could not answer the challenge: ${String(err)}`),
      );
      return;
    }
    if (msg.type === "welcome") {
      this.backoff.reset();
      // Liveness: ping every half status interval (see WelcomeSchema), never less often than
      // the default.
      const s = this.socket;
      if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
      this.pingTimer = this.timers.setInterval(
        () => {
          if (s && s.readyState === OPEN) s.send(PING_FRAME);
        },
        Math.min(this.opts.pingIntervalMs ?? 10_000, msg.statusIntervalMs / 2),
      );
      if (this.statusTimer !== null) this.timers.clearInterval(this.statusTimer);
      this.statusTimer = this.timers.setInterval(() => this.beat(s), msg.statusIntervalMs);
      this.opts.onConnection("connected");
    }
    this.opts.onMessage(msg);
  }

  private beat(s: SocketLike | null): void {
    const send = (frame: TabMessage | null) => {
      if (frame && s && s === this.socket && s.readyState === OPEN) s.send(JSON.stringify(frame));
    };
    const frame = this.opts.heartbeat();
    if (frame instanceof Promise) {
      frame.then(send, (err: unknown) => this.log(`no heartbeat: ${String(err)}`));
    } else send(frame);
  }

  private closed(s: SocketLike, code: number, reason: string): void {
    if (s !== this.socket) return;
    this.socket = null;
    this.clearTimers();
    if (this.stopped) return;
    if (FATAL_CLOSE_CODES.has(code)) {
      this.opts.onConnection("fatal", reason || `closed with code ${code}`);
      return;
    }
    // Moved: the Region shard split and another shard takes this tab; nothing went wrong, so no
    // backoff (the coordinator sends it only to idle tabs, a few at a time).
    const delay = code === CloseCode.Moved ? 0 : this.backoff.next();
    this.opts.onConnection("reconnecting", `closed (${code}${reason ? `: ${reason}` : ""})`);
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.open("reconnecting");
    }, delay);
  }

  private clearTimers(): void {
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    if (this.statusTimer !== null) this.timers.clearInterval(this.statusTimer);
    this.pingTimer = null;
    this.statusTimer = null;
  }
}
