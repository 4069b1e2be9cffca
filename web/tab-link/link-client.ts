import type { Connection, CoordinatorLink, TabSocketOptions } from "../runtime/tab-socket.js";
import type { Timers } from "../runtime/timers.js";
import {
  LinkToPageSchema,
  type LinkPort,
  type LinkToPage,
  type PageToLink,
} from "./link-messages.js";

/**
 * The page's end of the tab link (the Worker's end is link-host.ts). It gives the contributor two
 * things that keep working in a hidden tab:
 * - `connect(opts)`: the coordinator connection (`CoordinatorLink`), with the socket, its pings,
 *   heartbeats and reconnect backoff in the Worker; the page answers `hello` and status requests.
 * - `timers`: `Timers` that run in the Worker and fire here by message, so the delta coalescer,
 *   the GPU-share rests and recovery are not held back to one wake-up a minute while hidden.
 * One connection at a time: a new `connect` replaces the callbacks of the previous one.
 */
export interface TabLink {
  readonly timers: Timers;
  connect(opts: TabSocketOptions): CoordinatorLink;
  /** Close the socket and end the Worker (the page is done with contributing). */
  terminate(): void;
}

export function tabLinkClient(port: LinkPort, terminate: () => void = () => {}): TabLink {
  const post = (m: PageToLink) => port.postMessage(m);
  let current: TabSocketOptions | null = null;
  let connection: Connection = "stopped";
  let nextTimer = 1;
  const timerFns = new Map<number, { fn: () => void; repeat: boolean }>();

  const receive = (msg: LinkToPage) => {
    const opts = current;
    switch (msg.type) {
      case "timer.fire": {
        const t = timerFns.get(msg.id);
        if (!t) return;
        if (!t.repeat) timerFns.delete(msg.id);
        t.fn();
        return;
      }
      case "log":
        (opts?.log ?? ((m: string) => console.warn(`[tabgrid] ${m}`)))(msg.message);
        return;
      case "connection":
        connection = msg.connection;
        opts?.onConnection(msg.connection, msg.detail ?? undefined);
        return;
      case "message":
        opts?.onMessage(msg.msg);
        return;
      case "hello.request":
        if (!opts) return;
        void Promise.resolve(opts.hello(msg.nonce)).then(
          (hello) => post({ type: "hello", id: msg.id, hello }),
          (err: unknown) => opts.log?.(`could not answer the challenge: ${String(err)}`),
        );
        return;
      case "heartbeat.request":
        if (!opts) return;
        void Promise.resolve(opts.heartbeat()).then((frame) => {
          if (frame) post({ type: "heartbeat", id: msg.id, frame });
        });
        return;
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  };

  port.addEventListener("message", (ev) => {
    const parsed = LinkToPageSchema.safeParse(ev.data);
    if (!parsed.success) {
      console.warn(
        `[tabgrid] ignored an invalid message from the tab link: ${parsed.error.message}`,
      );
      return;
    }
    receive(parsed.data);
  });

  const set = (fn: () => void, ms: number, repeat: boolean) => {
    const id = nextTimer++;
    timerFns.set(id, { fn, repeat });
    post({ type: "timer.set", id, ms: Math.max(0, Math.min(ms, 2 ** 31 - 1)), repeat });
    return id;
  };
  const clear = (id: number) => {
    if (timerFns.delete(id)) post({ type: "timer.clear", id });
  };
  const timers: Timers = {
    now: () => performance.now(),
    setTimeout: (fn, ms) => set(fn, ms, false),
    clearTimeout: clear,
    setInterval: (fn, ms) => set(fn, ms, true),
    clearInterval: clear,
  };

  return {
    timers,
    connect(opts) {
      current = opts;
      return {
        start() {
          current = opts;
          post({
            type: "connect",
            url: opts.url,
            ...(opts.pingIntervalMs ? { pingIntervalMs: opts.pingIntervalMs } : {}),
          });
        },
        send(msg) {
          if (current !== opts) return false;
          post({ type: "send", msg });
          return connection === "connected";
        },
        stop(reason = "contributor stopped") {
          if (current !== opts) return;
          post({ type: "disconnect", reason });
          // Said here at once: the Worker may be frozen with the page, or about to be terminated.
          connection = "stopped";
          opts.onConnection("stopped");
        },
      };
    },
    terminate() {
      post({ type: "disconnect", reason: "page closed" });
      timerFns.clear();
      current = null;
      terminate();
    },
  };
}

/**
 * The production tab link: a dedicated Worker (emitted by Vite next to the engine Worker). Null
 * where a module Worker cannot start; the contributor then keeps its socket on the page.
 */
export function startTabLink(): TabLink | null {
  try {
    const worker = new Worker(new URL("./tab-link-worker.ts", import.meta.url), {
      type: "module",
      name: "tabgrid-tab-link",
    });
    return tabLinkClient(worker, () => worker.terminate());
  } catch {
    return null;
  }
}
