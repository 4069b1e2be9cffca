import type { CoordinatorMessage, TabMessage } from "../../shared/protocol/node-messages.js";
import type { SocketLike } from "../../web/runtime/tab-socket.js";

/**
 * A WebSocket stand-in for unit tests of the tab runtime: records what the tab sends and lets the
 * test play the coordinator (open, send frames, close with a code). Every socket the runtime
 * creates is kept in `ScriptedSockets.all`, so reconnects are visible.
 */
export class ScriptedSocket implements SocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // ---- the coordinator's side ----
  open(): void {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  receive(msg: CoordinatorMessage | string): void {
    const data = typeof msg === "string" ? msg : JSON.stringify(msg);
    this.onmessage?.({ data } as MessageEvent);
  }
  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason } as CloseEvent);
  }
  /** Parsed JSON frames the tab sent (pings included). */
  frames(): (TabMessage | { type: "ping" })[] {
    return this.sent.map((s) => JSON.parse(s));
  }
}

export class ScriptedSockets {
  readonly all: ScriptedSocket[] = [];
  readonly create = (url: string): ScriptedSocket => {
    const s = new ScriptedSocket(url);
    this.all.push(s);
    return s;
  };
  get last(): ScriptedSocket {
    const s = this.all.at(-1);
    if (!s) throw new Error("no socket was created");
    return s;
  }
}
