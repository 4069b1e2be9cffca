import { describe, expect, it } from "vitest";
import { PING_FRAME, type Hello } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { TEST_ADAPTER } from "../../test/support/contributor-harness.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import type { Connection } from "../runtime/tab-socket.js";
import { tabLinkClient } from "./link-client.js";
import { serveTabLink } from "./link-host.js";
import type { LinkPort } from "./link-messages.js";

/** Two ends of a channel that deliver at once, structured-cloned like postMessage. */
function channel(): [LinkPort, LinkPort] {
  const listeners: [((ev: MessageEvent) => void)[], ((ev: MessageEvent) => void)[]] = [[], []];
  const end = (mine: 0 | 1): LinkPort => ({
    postMessage: (m) => {
      for (const l of listeners[mine === 0 ? 1 : 0])
        l({ data: structuredClone(m) } as MessageEvent);
    },
    addEventListener: (_type, l) => listeners[mine].push(l),
  });
  return [end(0), end(1)];
}

const hello: Hello = {
  type: "hello",
  protocol: PROTOCOL_VERSION,
  nodeId: "node-12345678",
  adapter: TEST_ADAPTER,
  models: ["m"],
  state: "idle",
  agent: "test",
};
const challenge = { type: "challenge", nonce: "nonce-0123456789abcdef" } as const;
const welcome = {
  type: "welcome",
  protocol: PROTOCOL_VERSION,
  nodeId: "node-12345678",
  statusIntervalMs: 10_000,
} as const;

function setup() {
  const [pageEnd, workerEnd] = channel();
  const timers = new ManualTimers();
  const sockets = new ScriptedSockets();
  serveTabLink(workerEnd, { timers, createSocket: sockets.create });
  const link = tabLinkClient(pageEnd);
  const connections: Connection[] = [];
  const received: unknown[] = [];
  const conn = link.connect({
    url: "ws://localhost/v1/nodes/connect",
    hello: () => hello,
    heartbeat: () => ({ type: "status", state: "idle", models: ["m"] }),
    onMessage: (m) => received.push(m),
    onConnection: (c) => connections.push(c),
  });
  return { timers, sockets, link, conn, connections, received, pageEnd, workerEnd };
}

/** Let the promise hops between the two ends run (no time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const types = (sent: string[]) => sent.map((s) => (s === PING_FRAME ? "ping" : JSON.parse(s).type));

describe("tab link", () => {
  it("runs the socket, its pings and heartbeats on the Worker's clock, asking the page for hello and status", async () => {
    const { timers, sockets, conn, connections, received } = setup();
    conn.start();
    expect(connections).toEqual(["connecting"]);
    sockets.last.open();
    sockets.last.receive(challenge);
    await settle();
    expect(types(sockets.last.sent)).toEqual(["hello"]);
    sockets.last.receive(welcome);
    expect(connections.at(-1)).toBe("connected");
    expect(received).toEqual([welcome]);
    timers.advance(10_000);
    await settle();
    expect(types(sockets.last.sent)).toEqual(["hello", "ping", "ping", "status"]);
    // A frame from the page goes out on the Worker's socket.
    expect(conn.send({ type: "job.accept", jobId: "j1" })).toBe(true);
    expect(types(sockets.last.sent).at(-1)).toBe("job.accept");
  });

  it("stops on disconnect and reconnects on the next start (freeze, then resume)", () => {
    const { sockets, conn, connections } = setup();
    conn.start();
    sockets.last.open();
    conn.stop("page frozen by the browser");
    expect(sockets.last.closedWith).toEqual({ code: 1000, reason: "page frozen by the browser" });
    expect(connections.at(-1)).toBe("stopped");
    conn.start();
    expect(sockets.all).toHaveLength(2);
    // A second start while connected opens nothing more.
    conn.start();
    expect(sockets.all).toHaveLength(2);
  });

  it("fires the page's timers from the Worker, and cleared ones never", () => {
    const { timers, link } = setup();
    const fired: string[] = [];
    link.timers.setTimeout(() => fired.push("once"), 50);
    const cleared = link.timers.setTimeout(() => fired.push("cleared"), 50);
    link.timers.clearTimeout(cleared);
    const every = link.timers.setInterval(() => fired.push("every"), 30);
    timers.advance(70);
    link.timers.clearInterval(every);
    timers.advance(100);
    expect(fired).toEqual(["every", "once", "every"]);
    expect(timers.pending).toBe(0);
  });

  it("drops messages that do not match the schema, on both ends", () => {
    const { sockets, conn, pageEnd, workerEnd, received } = setup();
    conn.start();
    sockets.last.open();
    // Forged coordinator traffic posted to the page, and a forged frame posted to the Worker.
    workerEnd.postMessage({ type: "message", msg: { type: "job.assign", job: {} } });
    pageEnd.postMessage({ type: "send", msg: { type: "job.delta", jobId: "", seq: -1 } });
    pageEnd.postMessage({ type: "timer.set", id: -1, ms: 1, repeat: false });
    expect(received).toEqual([]);
    expect(sockets.last.sent.filter((s) => s.includes("job.delta"))).toEqual([]);
  });
});
