import type { Hello, TabMessage } from "../../shared/protocol/node-messages.js";
import type { Backoff } from "../runtime/backoff.js";
import { TabSocket, type SocketLike } from "../runtime/tab-socket.js";
import { browserTimers, type Timers } from "../runtime/timers.js";
import {
  PageToLinkSchema,
  type LinkPort,
  type LinkToPage,
  type PageToLink,
} from "./link-messages.js";

/**
 * The Worker's end of the tab link: owns the coordinator WebSocket (a `TabSocket`, so pings every
 * half status interval, heartbeats and reconnect backoff run on the Worker's timers) and runs the
 * page's timers for it. A dedicated Worker's timers are not subject to the background throttling
 * of a hidden page's main thread (1-second alignment, then one wake-up a minute), so a hidden tab
 * keeps its connection and its job timing.
 *
 * The page keeps what only it knows: `hello` (state, models, the identity proof) and the status
 * frame are asked for by message, and message events are delivered to hidden pages without delay.
 */
export interface LinkHostOptions {
  timers?: Timers;
  createSocket?: (url: string) => SocketLike;
  backoff?: () => Backoff;
}

export function serveTabLink(port: LinkPort, opts: LinkHostOptions = {}): void {
  const timers = opts.timers ?? browserTimers;
  const post = (m: LinkToPage) => port.postMessage(m);
  const log = (message: string) => post({ type: "log", message: message.slice(0, 2000) });
  let socket: TabSocket | null = null;
  let nextId = 0;
  const hellos = new Map<number, (hello: Hello) => void>();
  // One heartbeat asked for at a time: a page that does not answer (frozen) is not asked again.
  let heartbeat: { id: number; answer: (frame: TabMessage) => void } | null = null;
  const pageTimers = new Map<number, { handle: number; repeat: boolean }>();

  const connect = (msg: Extract<PageToLink, { type: "connect" }>) => {
    if (socket) return;
    hellos.clear();
    heartbeat = null;
    socket = new TabSocket({
      url: msg.url,
      hello: (nonce) =>
        new Promise<Hello>((resolve) => {
          const id = nextId++;
          hellos.set(id, resolve);
          post({ type: "hello.request", id, nonce });
        }),
      heartbeat: () => {
        if (heartbeat) return null;
        const id = nextId++;
        return new Promise<TabMessage>((resolve) => {
          heartbeat = { id, answer: resolve };
          post({ type: "heartbeat.request", id });
        });
      },
      onMessage: (m) => post({ type: "message", msg: m }),
      onConnection: (connection, detail) =>
        post({ type: "connection", connection, detail: detail?.slice(0, 500) ?? null }),
      timers,
      log,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.backoff ? { backoff: opts.backoff() } : {}),
      ...(msg.pingIntervalMs ? { pingIntervalMs: msg.pingIntervalMs } : {}),
    });
    socket.start();
  };

  const receive = (msg: PageToLink) => {
    switch (msg.type) {
      case "connect":
        return connect(msg);
      case "disconnect": {
        const s = socket;
        socket = null;
        s?.stop(msg.reason);
        return;
      }
      case "send":
        socket?.send(msg.msg);
        return;
      case "hello": {
        const answer = hellos.get(msg.id);
        hellos.delete(msg.id);
        answer?.(msg.hello);
        return;
      }
      case "heartbeat": {
        if (heartbeat?.id !== msg.id) return;
        const { answer } = heartbeat;
        heartbeat = null;
        answer(msg.frame);
        return;
      }
      case "timer.set": {
        const fire = () => {
          if (!msg.repeat) pageTimers.delete(msg.id);
          post({ type: "timer.fire", id: msg.id });
        };
        const handle = msg.repeat
          ? timers.setInterval(fire, msg.ms)
          : timers.setTimeout(fire, msg.ms);
        pageTimers.set(msg.id, { handle, repeat: msg.repeat });
        return;
      }
      case "timer.clear": {
        const t = pageTimers.get(msg.id);
        pageTimers.delete(msg.id);
        if (t?.repeat) timers.clearInterval(t.handle);
        else if (t) timers.clearTimeout(t.handle);
        return;
      }
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  };

  port.addEventListener("message", (ev) => {
    const parsed = PageToLinkSchema.safeParse(ev.data);
    if (!parsed.success) {
      log(`ignored an invalid message from the page: ${parsed.error.issues[0]?.message ?? "?"}`);
      return;
    }
    receive(parsed.data);
  });
}
