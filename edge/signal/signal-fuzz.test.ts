import { SELF, env, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { REGION_HINTS } from "../../shared/geo/regions.js";
import {
  MAX_SIGNAL_FRAME_BYTES,
  PeerMessageType,
  SignalCloseCode,
  type PeerServerMessage,
} from "../../shared/protocol/peerjs-messages.js";
import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import { DEV_SIGNAL_SECRET } from "../config.js";
import type { AppEnv } from "../env.js";
import { issuePeerId } from "./peer-ids.js";
import type { SignalDurableObject } from "./signal-do.js";
import { signalStub } from "./signal-routes.js";
import {
  MAX_QUEUED_PER_ADDRESS,
  MAX_QUEUED_PER_PEER,
  MAX_QUEUED_PER_SENDER,
  QUEUE_SHARE_PER_SENDER,
} from "./signal-queue.js";

/**
 * Fuzzing the signalling socket: chaos peers (ids the server issued, several addresses) send
 * seeded random frames — junk JSON, near-valid OFFER/CANDIDATE/LEAVE to issued, made-up and
 * malformed ids, forged `src`, extra fields, binary, oversized, floods — while honest peers keep
 * signalling. Afterwards: every close a chaos peer got is typed; every message anyone received is a
 * known server message with `src` the sender's real id; the queues are within their shares and hold
 * only issued ids; no object beyond the fixed shards exists; and honest signalling, queued and
 * direct, still gets through.
 */
const appEnv = env as unknown as AppEnv;
const BASE = "http://tabgrid.test/v1/signal";
const SEED = 20261124;
const KNOWN_TYPES = new Set<string>(Object.values(PeerMessageType));
const TYPED_CLOSES = new Set<number>([1000, ...Object.values(SignalCloseCode)]);

interface Peer {
  id: string;
  ws: WebSocket;
  received: PeerServerMessage[];
  closed: Promise<number>;
  closeCode: number | null;
}

const open: Peer[] = [];
afterEach(() => {
  for (const p of open.splice(0)) {
    try {
      p.ws.close(1000, "done");
    } catch {
      // Already closed.
    }
  }
});

async function issue(shard = "wnam"): Promise<string> {
  return (await SELF.fetch(`${BASE}/peerjs/id?shard=${shard}`)).text();
}

async function connect(id: string, addr: string): Promise<Peer> {
  const q = new URLSearchParams({ key: "peerjs", id, token: `tok-${id.slice(-6)}` });
  const res = await SELF.fetch(`${BASE}/peerjs?${q}`, {
    headers: { upgrade: "websocket", "cf-connecting-ip": addr },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const peer: Peer = { id, ws, received: [], closeCode: null, closed: Promise.resolve(0) };
  peer.closed = new Promise((resolve) =>
    ws.addEventListener("close", (e) => {
      peer.closeCode = e.code;
      resolve(e.code);
    }),
  );
  ws.addEventListener("message", (e) =>
    peer.received.push(JSON.parse(e.data as string) as PeerServerMessage),
  );
  ws.accept();
  open.push(peer);
  return peer;
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

const hex = (rng: Rng, n: number) =>
  Array.from({ length: n }, () => "0123456789abcdef"[rng.int(16)]).join("");

function junkPayload(rng: Rng): unknown {
  switch (rng.int(4)) {
    case 0:
      return { connectionId: "dc_" + hex(rng, 4), sdp: { type: "offer", sdp: "v=0" } };
    case 1:
      return {
        connectionId: "dc_x",
        candidate: { candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host", sdpMLineIndex: 0 },
        smuggled: { deep: [1, 2, 3] },
      };
    case 2:
      return { connectionId: "", sdp: { type: "nope", sdp: 5 } };
    default:
      return rng.next() < 0.5 ? null : "x".repeat(rng.int(100));
  }
}

function junkFrame(rng: Rng, dsts: string[]): string | Uint8Array {
  const dst = dsts[rng.int(dsts.length)];
  switch (rng.int(9)) {
    case 0:
      return "{" + "x".repeat(rng.int(50));
    case 1:
      return JSON.stringify({ type: ["SHOUT", "OPEN", "EXPIRE", "ID-TAKEN", 5][rng.int(5)], dst });
    case 2:
    case 3:
    case 4:
      return JSON.stringify({
        type: ["OFFER", "ANSWER", "CANDIDATE"][rng.int(3)],
        dst,
        src: dsts[rng.int(dsts.length)],
        payload: junkPayload(rng),
        extra: "field",
      });
    case 5:
      return JSON.stringify({ type: "LEAVE", ...(rng.next() < 0.5 ? { dst } : {}) });
    case 6:
      return new TextEncoder().encode(JSON.stringify({ type: "OFFER", dst, payload: {} }));
    case 7:
      return JSON.stringify({
        type: "CANDIDATE",
        dst,
        payload: { connectionId: "€".repeat(12_000) },
      });
    default:
      return "x".repeat(MAX_SIGNAL_FRAME_BYTES + rng.int(10));
  }
}

const offerTo = (dst: string, connectionId: string) =>
  JSON.stringify({
    type: "OFFER",
    dst,
    payload: { connectionId, type: "data", sdp: { type: "offer", sdp: "v=0\r\n" } },
  });

describe("signalling under fuzzed frames (seed " + SEED + ")", () => {
  it("stays typed, bounded and useful", async () => {
    const rng = createRng(SEED);
    const honestA = await connect(await issue(), "192.0.2.1");
    const honestB = await connect(await issue(), "192.0.2.2");
    const absentId = await issue(); // Connects only at the end.
    await until(() => honestA.received.length > 0 && honestB.received.length > 0);

    const made = [
      `tg-wnam-${hex(rng, 32)}`,
      `tg-fake-${hex(rng, 32)}`,
      "alice",
      `tg-wnam-${hex(rng, 31)}`,
    ];
    const everyone: Peer[] = [honestA, honestB];
    const chaosAddrs = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
    for (let round = 0; round < 12; round++) {
      const chaos = await connect(await issue(), chaosAddrs[round % chaosAddrs.length]!);
      everyone.push(chaos);
      const dsts = [honestA.id, honestB.id, absentId, chaos.id, ...made];
      const frames = round === 11 ? 400 : 40; // The last one floods past its budget.
      for (let i = 0; i < frames && chaos.closeCode === null; i++) {
        chaos.ws.send(round === 11 ? offerTo(absentId, "flood" + i) : junkFrame(rng, dsts));
      }
    }
    // The honest end of a queued introduction: an offer for a peer that connects later.
    const honestC = await connect(await issue(), "192.0.2.3");
    everyone.push(honestC);
    await until(() => honestC.received.length > 0);
    honestC.ws.send(offerTo(absentId, "honest"));

    // Wait until every chaos socket has closed or gone quiet, then check the state.
    await new Promise((r) => setTimeout(r, 500));
    for (const p of everyone.slice(2)) {
      if (p.closeCode !== null) expect(TYPED_CLOSES).toContain(p.closeCode);
    }
    expect(everyone.some((p) => p.closeCode === SignalCloseCode.FrameBudget)).toBe(true);
    expect(everyone.some((p) => p.closeCode === SignalCloseCode.BadFrame)).toBe(true);

    const ids = new Set(everyone.map((p) => p.id));
    for (const p of everyone) {
      for (const m of p.received) {
        expect(KNOWN_TYPES).toContain(m.type);
        if ("src" in m && m.type !== "EXPIRE") {
          // Relayed from a real peer, to this one, with only known fields.
          expect(ids).toContain(m.src);
          expect(m.dst).toBe(p.id);
          expect(Object.keys(m).sort()).toEqual(
            m.type === "LEAVE" ? ["dst", "src", "type"] : ["dst", "payload", "src", "type"],
          );
          if ("payload" in m) expect(m.payload).not.toHaveProperty("smuggled");
        }
      }
    }

    await runInDurableObject(signalStub(appEnv, "wnam"), async (_o: SignalDurableObject, ctx) => {
      const q = (sql: string) => ctx.storage.sql.exec<{ n: number }>(sql).toArray();
      const perPeer = q("SELECT COUNT(*) AS n FROM signal_queue GROUP BY dst");
      const perPair = q("SELECT COUNT(*) AS n FROM signal_queue GROUP BY dst, src");
      const perSender = q("SELECT COUNT(*) AS n FROM signal_queue GROUP BY src");
      const perAddr = q("SELECT COUNT(*) AS n FROM signal_queue GROUP BY addr");
      for (const { n } of perPeer) expect(n).toBeLessThanOrEqual(MAX_QUEUED_PER_PEER);
      for (const { n } of perPair) expect(n).toBeLessThanOrEqual(QUEUE_SHARE_PER_SENDER);
      for (const { n } of perSender) expect(n).toBeLessThanOrEqual(MAX_QUEUED_PER_SENDER);
      for (const { n } of perAddr) expect(n).toBeLessThanOrEqual(MAX_QUEUED_PER_ADDRESS);
      const dsts = ctx.storage.sql
        .exec<{ dst: string }>("SELECT DISTINCT dst FROM signal_queue")
        .toArray()
        .map((r) => r.dst);
      // Only issued ids are queued for (made-up ones were answered EXPIRE at once).
      for (const dst of dsts) expect(made).not.toContain(dst);
    });

    // Only the fixed shards exist, whatever ids the chaos peers used.
    expect((await listDurableObjectIds(appEnv.SIGNAL)).length).toBeLessThanOrEqual(
      REGION_HINTS.length + 1,
    );

    // Honest signalling still works: direct, and queued for a peer that arrives now.
    honestA.ws.send(offerTo(honestB.id, "after-fuzz"));
    await until(() =>
      honestB.received.some((m) => m.type === "OFFER" && m.payload?.connectionId === "after-fuzz"),
    );
    expect(honestB.received.find((m) => m.type === "OFFER" && m.src === honestA.id)).toBeTruthy();
    const late = await connect(absentId, "192.0.2.4");
    await until(() =>
      late.received.some((m) => m.type === "OFFER" && m.payload?.connectionId === "honest"),
    );
    expect(
      late.received.find((m) => m.type === "OFFER" && m.payload?.connectionId === "honest"),
    ).toMatchObject({ src: honestC.id, dst: absentId });
    // Hundreds of socket frames: room for a loaded machine (the default is 5 s).
  }, 30_000);
});

describe(
  "signalling: rejected sockets and floods from many sockets (seed " + (SEED + 1) + ")",
  () => {
    it("creates no object for a rejected id, closes every flooder, and keeps honest peers talking", async () => {
      const rng = createRng(SEED + 1);
      const objects0 = (await listDurableObjectIds(appEnv.SIGNAL)).length;
      // Ids that may not connect, in shards nothing else here uses: made up, altered, expired.
      const rejected: Array<{ id: string; code: number }> = [];
      for (let i = 0; i < 12; i++) {
        const shard = (["afr", "me", "oc"] as const)[i % 3] ?? "afr";
        const kind = rng.int(3);
        if (kind === 0) rejected.push({ id: `tg-${shard}-${hex(rng, 32)}`, code: 4403 });
        else if (kind === 1) {
          const issued = await issuePeerId(DEV_SIGNAL_SECRET, shard);
          const flipped = issued.at(-1) === "0" ? "1" : "0";
          rejected.push({ id: issued.slice(0, -1) + flipped, code: 4403 });
        } else {
          const when = Date.now() - 3_600_000 - rng.int(86_400_000);
          const id = await issuePeerId(DEV_SIGNAL_SECRET, shard, 60_000, when);
          rejected.push({ id, code: SignalCloseCode.Expired });
        }
      }
      for (const { id, code } of rejected) {
        const p = await connect(id, `198.51.100.${1 + rng.int(200)}`);
        expect(await p.closed).toBe(code);
        expect(p.received[0]?.type).toBe("ERROR");
      }
      expect((await listDurableObjectIds(appEnv.SIGNAL)).length).toBe(objects0);

      // Five sockets from one address flood at once, while two honest peers signal.
      const a = await connect(await issue("weur"), "192.0.2.10");
      const b = await connect(await issue("weur"), "192.0.2.11");
      await until(() => a.received.length > 0 && b.received.length > 0);
      const flooders = await Promise.all(
        Array.from({ length: 5 }, async () => connect(await issue("weur"), "203.0.113.50")),
      );
      for (let i = 0; i < 300; i++) {
        for (const f of flooders) {
          if (f.closeCode === null) f.ws.send(offerTo(b.id, `flood-${i}`));
        }
      }
      await Promise.all(flooders.map((f) => f.closed));
      for (const f of flooders) expect(f.closeCode).toBe(SignalCloseCode.FrameBudget);
      a.ws.send(offerTo(b.id, "honest-after-flood"));
      await until(() =>
        b.received.some(
          (m) => m.type === "OFFER" && m.payload?.connectionId === "honest-after-flood",
        ),
      );
      expect(
        b.received.find(
          (m) => m.type === "OFFER" && m.payload?.connectionId === "honest-after-flood",
        ),
      ).toMatchObject({ src: a.id });
    }, 30_000);
  },
);
