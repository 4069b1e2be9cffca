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

  constructor(
    readonly ws: WebSocket,
    readonly id = "",
  ) {
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

async function connect(
  id: string,
  token = "tok-1",
  key = "peerjs",
  addr = "198.51.100.1",
): Promise<RawPeer> {
  const q = new URLSearchParams({ key, id, token, version: "1.5.5" });
  const res = await SELF.fetch(`${BASE}/peerjs?${q}`, {
    headers: { upgrade: "websocket", "cf-connecting-ip": addr },
  });
  expect(res.status).toBe(101);
  res.webSocket!.accept();
  const peer = new RawPeer(res.webSocket!, id);
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

/** Wait until `peer` has `n` messages or `ms` passed; returns how many it has. */
async function settle(peer: RawPeer, n: number, ms = 2000): Promise<number> {
  await Promise.race([peer.nth(n), new Promise((r) => setTimeout(r, ms))]);
  return peer.received.length;
}

describe("only ids the server issued get a socket", () => {
  it("refuses a well-formed id it never issued, and one with a changed character", async () => {
    const made = `tg-wnam-${"ab".repeat(16)}`;
    const p = await connect(made);
    expect(await p.nth(1)).toEqual({
      type: "ERROR",
      payload: { msg: "This id was not issued by this server" },
    });
    expect((await p.closed).code).toBe(SignalCloseCode.NotIssued);

    const issued = await newId();
    const last = issued.at(-1) === "0" ? "1" : "0";
    const altered = await connect(issued.slice(0, -1) + last);
    expect((await altered.nth(1)).type).toBe("ERROR");
    expect((await altered.closed).code).toBe(SignalCloseCode.NotIssued);
    // The issued one itself opens.
    expect(await (await connect(issued)).nth(1)).toEqual({ type: "OPEN" });
  });

  it("a made-up id in an unused shard touches no object", async () => {
    const { listDurableObjectIds } = await import("cloudflare:test");
    const before = (await listDurableObjectIds(appEnv.SIGNAL)).length;
    for (let i = 0; i < 10; i++) {
      const p = await connect(`tg-afr-${i.toString(16).padStart(32, "7")}`);
      expect((await p.closed).code).toBe(SignalCloseCode.NotIssued);
    }
    expect((await listDurableObjectIds(appEnv.SIGNAL)).length).toBe(before);
  });

  it("issues ids in a chosen shard (a tab joining a caller's shard), never in a made-up one", async () => {
    const res = await SELF.fetch(`${BASE}/peerjs/id?shard=apac`);
    const id = await res.text();
    expect(peerShard(id)).toBe("apac");
    expect(await (await connect(id)).nth(1)).toEqual({ type: "OPEN" });
    const bad = await SELF.fetch(`${BASE}/peerjs/id?shard=zz`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("shard");
  });

  it("tells the sender EXPIRE at once for an OFFER to an id that was never issued, queuing nothing", async () => {
    const pa = await connect(await newId());
    await pa.nth(1);
    const nobody = `tg-wnam-${"c".repeat(32)}`;
    pa.send(offer(nobody));
    expect(await pa.nth(2)).toEqual({ type: "EXPIRE", src: nobody, dst: pa.id });
    await runInDurableObject(signalStub(appEnv, "wnam"), async (_o: SignalDurableObject, ctx) => {
      expect(
        ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM signal_queue WHERE dst = ?", nobody).one()
          .n,
      ).toBe(0);
    });
  });
});

describe("signalling limits per address, per socket and per sender", () => {
  it("refuses the 21st socket from one address with a typed close; other addresses still connect", async () => {
    const addr = "203.0.113.77";
    const peers: RawPeer[] = [];
    for (let i = 0; i < 25; i++) peers.push(await connect(await newId(), "t", "peerjs", addr));
    const first = await Promise.all(peers.map((p) => p.nth(1)));
    expect(first.filter((m) => m.type === "OPEN")).toHaveLength(20);
    const refused = peers.slice(20);
    for (const p of refused) {
      expect(p.received[0]).toMatchObject({ type: "ERROR" });
      expect((await p.closed).code).toBe(SignalCloseCode.TooManyPeers);
    }
    const other = await connect(await newId(), "t", "peerjs", "203.0.113.78");
    expect(await other.nth(1)).toEqual({ type: "OPEN" });
    // A socket that closes frees its slot.
    peers[0]!.ws.close(1000, "bye");
    await peers[0]!.closed;
    let again: RawPeer | null = null;
    for (let i = 0; i < 20 && again?.received[0]?.type !== "OPEN"; i++) {
      again = await connect(await newId(), "t", "peerjs", addr);
      await again.nth(1);
    }
    expect(again?.received[0]).toEqual({ type: "OPEN" });
  });

  it("closes a socket that floods frames past its budget with a typed close", async () => {
    const p = await connect(await newId());
    await p.nth(1);
    // Not the auto-response spelling, so each one reaches the object and costs a frame.
    for (let i = 0; i < 300; i++) p.send('{ "type": "HEARTBEAT" }');
    const closed = await p.closed;
    expect(closed.code).toBe(SignalCloseCode.FrameBudget);
    expect(closed.reason).toMatch(/budget/);
  });

  it("100 offers to an absent id from one sender do not crowd out another sender's offer", async () => {
    const absent = await newId();
    const flooder = await connect(await newId(), "t", "peerjs", "192.0.2.10");
    const sameAddr = await connect(await newId(), "t", "peerjs", "192.0.2.10");
    const honest = await connect(await newId(), "t", "peerjs", "192.0.2.20");
    for (const p of [flooder, sameAddr, honest]) await p.nth(1);
    for (let i = 0; i < 100; i++) flooder.send(offer(absent));
    sameAddr.send(offer(absent));
    honest.send(offer(absent));
    // Wait until the object has handled every frame: 24 of the flooder's and the two others queued.
    const queued = async () =>
      runInDurableObject(signalStub(appEnv, "wnam"), async (_o: SignalDurableObject, ctx) =>
        Number(
          ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM signal_queue WHERE dst = ?", absent).one()
            .n,
        ),
      );
    for (let i = 0; i < 100 && (await queued()) < 26; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(await queued()).toBe(26);
    await settle(flooder, 1 + 76);
    // The flooder was told EXPIRE for what did not fit; the others were not.
    expect(flooder.received.filter((m) => m.type === "EXPIRE")).toHaveLength(76);
    expect(honest.received.filter((m) => m.type === "EXPIRE")).toHaveLength(0);
    expect(sameAddr.received.filter((m) => m.type === "EXPIRE")).toHaveLength(0);

    const pd = await connect(absent);
    await settle(pd, 1 + 26, 3000);
    const offers = pd.received.filter((m) => m.type === "OFFER");
    const srcs = offers.map((m) => (m as { src: string }).src);
    const [flooderId, sameId, honestId] = [flooder.id, sameAddr.id, honest.id];
    expect(srcs).toContain(honestId);
    expect(srcs).toContain(sameId);
    expect(srcs.filter((s) => s === flooderId)).toHaveLength(24);
  });
});
