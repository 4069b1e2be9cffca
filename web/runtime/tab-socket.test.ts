import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { PING_FRAME, PONG_FRAME, type Hello } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { TEST_ADAPTER } from "../../test/support/contributor-harness.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import { Backoff } from "./backoff.js";
import { TabSocket, type Connection } from "./tab-socket.js";

const hello: Hello = {
  type: "hello",
  protocol: PROTOCOL_VERSION,
  nodeId: "node-12345678",
  adapter: TEST_ADAPTER,
  models: ["m"],
  state: "idle",
  agent: "test",
};

const nonces: string[] = [];
function setup() {
  nonces.length = 0;
  const timers = new ManualTimers();
  const sockets = new ScriptedSockets();
  const connections: Connection[] = [];
  const received: unknown[] = [];
  const logs: string[] = [];
  const socket = new TabSocket({
    url: "ws://localhost/v1/nodes/connect",
    hello: (nonce: string) => (nonces.push(nonce), hello),
    heartbeat: () => ({ type: "status", state: "idle", models: ["m"] }),
    onMessage: (m) => received.push(m),
    onConnection: (c) => connections.push(c),
    createSocket: sockets.create,
    timers,
    backoff: new Backoff({ random: () => 1 }),
    log: (m) => logs.push(m),
  });
  return { timers, sockets, connections, received, logs, socket };
}

const challenge = { type: "challenge", nonce: "nonce-0123456789abcdef" } as const;
const welcome = {
  type: "welcome",
  protocol: PROTOCOL_VERSION,
  nodeId: "node-12345678",
  statusIntervalMs: 15_000,
} as const;

describe("TabSocket", () => {
  it("answers the challenge with hello, pings every half interval, and heartbeats at the welcome's interval", async () => {
    const { timers, sockets, connections, socket } = setup();
    socket.start();
    sockets.last.open();
    expect(sockets.last.frames()).toEqual([]);
    sockets.last.receive(challenge);
    await Promise.resolve();
    await Promise.resolve();
    expect(sockets.last.frames()).toEqual([hello]);
    expect(nonces).toEqual([challenge.nonce]);
    sockets.last.receive(welcome);
    expect(connections).toEqual(["connecting", "connected"]);
    // Pings every half status interval (7.5 s here), status every interval.
    timers.advance(15_000);
    const types = sockets.last.sent.map((s) => (s === PING_FRAME ? "ping" : JSON.parse(s).type));
    expect(types).toEqual(["hello", "ping", "ping", "status"]);
  });

  it("ignores pongs and logs invalid frames without passing them on", () => {
    const { sockets, received, logs, socket } = setup();
    socket.start();
    sockets.last.open();
    sockets.last.receive(PONG_FRAME);
    sockets.last.receive('{"type":"job.assign","job":{"id":""}}');
    sockets.last.receive("not json");
    expect(received).toEqual([]);
    expect(logs).toHaveLength(2);
    sockets.last.receive(welcome);
    expect(received).toEqual([welcome]);
  });

  it("reconnects with growing backoff, and resets it after a welcome", () => {
    const { timers, sockets, connections, socket } = setup();
    socket.start();
    sockets.last.serverClose(1006);
    expect(connections.at(-1)).toBe("reconnecting");
    timers.advance(499);
    expect(sockets.all).toHaveLength(1);
    timers.advance(1);
    expect(sockets.all).toHaveLength(2);
    sockets.last.serverClose(1006);
    timers.advance(999);
    expect(sockets.all).toHaveLength(2);
    timers.advance(1);
    expect(sockets.all).toHaveLength(3);
    sockets.last.open();
    sockets.last.receive(welcome);
    sockets.last.serverClose(1001);
    timers.advance(500);
    expect(sockets.all).toHaveLength(4);
  });

  it("reconnects at once, without backoff, when its shard moved it (4011)", () => {
    const { timers, sockets, connections, socket } = setup();
    socket.start();
    sockets.last.serverClose(1006);
    timers.advance(500);
    expect(sockets.all).toHaveLength(2);
    sockets.last.open();
    sockets.last.serverClose(CloseCode.Moved, "moved to another shard");
    expect(connections.at(-1)).toBe("reconnecting");
    timers.advance(0);
    expect(sockets.all).toHaveLength(3);
  });

  it("stops for good after a fatal close code", () => {
    const { timers, sockets, connections, socket } = setup();
    socket.start();
    sockets.last.open();
    sockets.last.serverClose(CloseCode.ProtocolTooOld, "reload the page");
    timers.advance(60_000);
    expect(sockets.all).toHaveLength(1);
    expect(connections.at(-1)).toBe("fatal");
  });

  it("stop closes the socket, cancels timers and never reconnects", () => {
    const { timers, sockets, socket } = setup();
    socket.start();
    sockets.last.open();
    socket.stop();
    expect(sockets.last.closedWith?.code).toBe(1000);
    expect(socket.send({ type: "status", state: "idle", models: [] })).toBe(false);
    timers.advance(60_000);
    expect(sockets.all).toHaveLength(1);
    expect(timers.pending).toBe(0);
  });
});
