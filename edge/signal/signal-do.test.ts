import {
  SELF,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import {
  HEARTBEAT_FRAME,
  MAX_SIGNAL_FRAME_BYTES,
  SignalCloseCode,
  peerShard,
  type PeerServerMessage,
} from "../../shared/protocol/peerjs-messages.js";
import type { AppEnv } from "../env.js";
import { SIGNAL_EXPIRE_MS, type SignalDurableObject } from "./signal-do.js";
import { signalStub } from "./signal-routes.js";

/**
 * The signalling object speaks what the official `peerjs` client expects from a PeerServer; these
 * tests play two raw peers over real WebSockets in workerd (the browser tests use `peerjs` itself).
 */
const appEnv = env as unknown as AppEnv;
const BASE = "http://tabgrid.test/v1/signal";

class RawPeer {
  readonly received: PeerServerMessage[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
    );
    ws.addEventListener("message", (e) => {
      this.received.push(JSON.parse(e.data as string) as PeerServerMessage);
      this.waiters = this.waiters.filter((w) => {
        if (this.received.length < w.n) return true;
        w.resolve();
        return false;
      });
    });
  }

  /** Wait until `n` messages have arrived in total; returns the n-th. */
  async nth(n: number): Promise<PeerServerMessage> {
    if (this.received.length < n) {
      await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
    }
    return this.received[n - 1]!;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }
}

const open: RawPeer[] = [];
afterEach(() => {
  for (const p of open.splice(0)) {
    try {
      p.ws.close(1000, "test done");
    } catch {
      // Already closed.
    }
  }
});

async function newId(): Promise<string> {
  const res = await SELF.fetch(`${BASE}/peerjs/id?ts=1&version=1.5.5`);
  expect(res.status).toBe(200);
  return res.text();
}

async function connect(id: string, token = "tok-1", key = "peerjs"): Promise<RawPeer> {
  const q = new URLSearchParams({ key, id, token, version: "1.5.5" });
  const res = await SELF.fetch(`${BASE}/peerjs?${q}`, { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  res.webSocket!.accept();
  const peer = new RawPeer(res.webSocket!);
  open.push(peer);
  return peer;
}

const offer = (dst: string, extra: Record<string, unknown> = {}) => ({
  type: "OFFER",
  dst,
  payload: {
    connectionId: "dc_1",
    type: "data",
    sdp: { type: "offer", sdp: "v=0\r\n" },
    serialization: "json",
    reliable: true,
    metadata: { jobId: "job_wnam_1" },
  },
  ...extra,
});

describe("PeerJS signalling", () => {
  it("hands out ids in the caller's shard, readable from any origin", async () => {
    const res = await SELF.fetch(`${BASE}/peerjs/id`, {
      headers: { origin: "https://site.example" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const id = await res.text();
    expect(id).toMatch(/^tg-[a-z]+-[0-9a-f]{32}$/);
    expect(peerShard(id)).toBe("wnam");
    expect(await newId()).not.toBe(id);
  });

  it("opens, relays with src stamped from the socket, and forwards only known fields", async () => {
    const [a, b] = [await newId(), await newId()];
    const pa = await connect(a);
    const pb = await connect(b);
    expect(await pa.nth(1)).toEqual({ type: "OPEN" });
    expect(await pb.nth(1)).toEqual({ type: "OPEN" });
    // A lies about its src and smuggles extra fields; B sees the truth and nothing extra.
    const forged = offer(b, { src: "tg-wnam-" + "0".repeat(32), note: "extra" });
    (forged.payload as Record<string, unknown>).smuggled = "x";
    pa.send(forged);
    const got = await pb.nth(2);
    expect(got).toEqual({
      type: "OFFER",
      src: a,
      dst: b,
      payload: {
        connectionId: "dc_1",
        type: "data",
        sdp: { type: "offer", sdp: "v=0\r\n" },
        serialization: "json",
        reliable: true,
        metadata: { jobId: "job_wnam_1" },
      },
    });
    pb.send({
      type: "ANSWER",
      dst: a,
      payload: { connectionId: "dc_1", sdp: { type: "answer", sdp: "v=0" } },
    });
    expect(await pa.nth(2)).toMatchObject({ type: "ANSWER", src: b, dst: a });
  });

  it("answers HEARTBEAT by auto-response", async () => {
    const p = await connect(await newId());
    await p.nth(1);
    p.send(HEARTBEAT_FRAME);
    expect(await p.nth(2)).toEqual({ type: "HEARTBEAT" });
  });

  it("queues signals for a peer that has not connected yet and delivers them on OPEN", async () => {
    const [a, c] = [await newId(), await newId()];
    const pa = await connect(a);
    await pa.nth(1);
    pa.send(offer(c));
    pa.send({
      type: "CANDIDATE",
      dst: c,
      payload: {
        connectionId: "dc_1",
        candidate: {
          candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host",
          sdpMid: "0",
          sdpMLineIndex: 0,
        },
      },
    });
    // The queue is in SQLite: it survives eviction.
    await evictDurableObject(signalStub(appEnv, "wnam"));
    const pc = await connect(c);
    expect(await pc.nth(1)).toEqual({ type: "OPEN" });
    expect(await pc.nth(2)).toMatchObject({ type: "OFFER", src: a, dst: c });
    expect(await pc.nth(3)).toMatchObject({ type: "CANDIDATE", src: a, dst: c });
  });

  it("expires queued signals and tells the sender EXPIRE", async () => {
    const [a, d] = [await newId(), await newId()];
    const pa = await connect(a);
    await pa.nth(1);
    pa.send(offer(d));
    const stub = signalStub(appEnv, "wnam");
    // Let the signal reach the queue (a heartbeat round trip orders after it), then age it.
    pa.send(HEARTBEAT_FRAME);
    await pa.nth(2);
    await runInDurableObject(stub, async (_obj: SignalDurableObject, ctx) => {
      expect(
        ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM signal_queue WHERE dst = ?", d).one().n,
      ).toBe(1);
      ctx.storage.sql.exec(
        "UPDATE signal_queue SET at = at - ? WHERE dst = ?",
        SIGNAL_EXPIRE_MS + 1000,
        d,
      );
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await pa.nth(3)).toEqual({ type: "EXPIRE", src: d, dst: a });
    // Nothing is left for d.
    const pd = await connect(d);
    expect(await pd.nth(1)).toEqual({ type: "OPEN" });
    pd.send(HEARTBEAT_FRAME);
    expect(await pd.nth(2)).toEqual({ type: "HEARTBEAT" });
  });

  it("refuses a taken id (other token) but lets the owner reconnect", async () => {
    const id = await newId();
    const first = await connect(id, "owner");
    await first.nth(1);
    const thief = await connect(id, "someone-else");
    expect(await thief.nth(1)).toEqual({ type: "ID-TAKEN", payload: { msg: "ID is taken" } });
    expect((await thief.closed).code).toBe(SignalCloseCode.IdTaken);
    const again = await connect(id, "owner");
    expect(await again.nth(1)).toEqual({ type: "OPEN" });
    expect((await first.closed).code).toBe(SignalCloseCode.Replaced);
  });

  it.each([
    ["a wrong key", { key: "nope" }, "INVALID-KEY", SignalCloseCode.InvalidKey],
    ["no token", { token: "" }, "ERROR", SignalCloseCode.BadQuery],
    ["an id not from this server", { id: "alice" }, "ERROR", SignalCloseCode.BadQuery],
  ])("answers %s with a typed message and close", async (_name, q, type, code) => {
    const id = "id" in q ? (q.id as string) : await newId();
    const p = await connect(
      id,
      "token" in q ? (q.token as string) : "t",
      "key" in q ? (q.key as string) : "peerjs",
    );
    expect((await p.nth(1)).type).toBe(type);
    expect((await p.closed).code).toBe(code);
  });

  it.each([
    ["not JSON", "{nope"],
    ["an unknown type", { type: "SHOUT", dst: "x" }],
    ["an OFFER without a payload", { type: "OFFER", dst: "tg-wnam-" + "1".repeat(32) }],
    ["an oversized frame", "x".repeat(MAX_SIGNAL_FRAME_BYTES + 1)],
  ])("closes a socket that sends %s, with a typed reason", async (_name, frame) => {
    const p = await connect(await newId());
    await p.nth(1);
    p.send(frame);
    const closed = await p.closed;
    expect([SignalCloseCode.BadFrame, SignalCloseCode.FrameTooLarge]).toContain(closed.code);
    expect(closed.reason.length).toBeGreaterThan(0);
  });

  it("measures the frame limit in UTF-8 bytes: an OFFER of 3-byte characters is too large", async () => {
    const [a, b] = [await newId(), await newId()];
    const pa = await connect(a);
    const pb = await connect(b);
    await pa.nth(1);
    await pb.nth(1);
    // ~12 K UTF-16 units (under the limit as a string length) but ~36 KB on the wire.
    const sdp = "€".repeat(Math.ceil(MAX_SIGNAL_FRAME_BYTES / 3) + 100);
    const big = offer(b);
    big.payload.sdp.sdp = sdp;
    expect(JSON.stringify(big).length).toBeLessThan(MAX_SIGNAL_FRAME_BYTES);
    pa.send(big);
    const closed = await pa.closed;
    expect(closed.code).toBe(SignalCloseCode.FrameTooLarge);
    expect(pb.received).toHaveLength(1);
  });

  it("routes by the attachment after hibernation/eviction", async () => {
    const [a, b] = [await newId(), await newId()];
    const pa = await connect(a);
    const pb = await connect(b);
    await pa.nth(1);
    await pb.nth(1);
    await evictDurableObject(signalStub(appEnv, "wnam"));
    pa.send(offer(b));
    expect(await pb.nth(2)).toMatchObject({ type: "OFFER", src: a, dst: b });
  });

  it("serves the operator's ICE servers (none configured in tests)", async () => {
    const res = await SELF.fetch(`${BASE}/ice`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ iceServers: [] });
  });

  it("refuses plain HTTP on the socket path and peer listing", async () => {
    expect((await SELF.fetch(`${BASE}/peerjs?key=peerjs&id=x&token=y`)).status).toBe(426);
    expect((await SELF.fetch(`${BASE}/peerjs/peers`)).status).toBe(401);
  });
});

describe("signalling objects are a fixed set", () => {
  it("30 made-up peer ids (shards that are not regions) create no new Signal objects", async () => {
    const { listDurableObjectIds } = await import("cloudflare:test");
    // Warm the default shard so that it is not counted as new.
    const warm = await connect(`tg-zzwarm-${"0".repeat(32)}`);
    await warm.nth(1);
    const before = (await listDurableObjectIds(appEnv.SIGNAL)).length;
    for (let i = 0; i < 30; i++) {
      const made = `tg-fake${String.fromCharCode(97 + (i % 26))}x-${i.toString(16).padStart(32, "0")}`;
      const p = await connect(made);
      await p.nth(1);
    }
    expect((await listDurableObjectIds(appEnv.SIGNAL)).length).toBe(before);
  });
});
