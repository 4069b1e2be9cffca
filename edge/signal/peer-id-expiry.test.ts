import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { SignalCloseCode, type PeerServerMessage } from "../../shared/protocol/peerjs-messages.js";
import { DEV_SIGNAL_SECRET } from "../config.js";
import { issuePeerId, peerIdExpiresAt } from "./peer-ids.js";

/** Expired peer ids, against the real signalling routes and objects (development key in tests). */
const BASE = "http://tabgrid.test/v1/signal";
const sockets: WebSocket[] = [];
afterEach(() => sockets.splice(0).forEach((ws) => ws.close(1000, "test done")));

async function connect(
  id: string,
): Promise<{ first: Promise<PeerServerMessage>; closed: Promise<number>; ws: WebSocket }> {
  const q = new URLSearchParams({ key: "peerjs", id, token: "tok-1", version: "1.5.5" });
  const res = await SELF.fetch(`${BASE}/peerjs?${q}`, { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const messages: PeerServerMessage[] = [];
  const waiting: Array<() => void> = [];
  ws.addEventListener("message", (e) => {
    messages.push(JSON.parse(e.data as string) as PeerServerMessage);
    waiting.splice(0).forEach((w) => w());
  });
  const closed = new Promise<number>((r) => ws.addEventListener("close", (e) => r(e.code)));
  ws.accept();
  sockets.push(ws);
  const first = (async () => {
    while (!messages.length) await new Promise<void>((r) => waiting.push(r));
    return messages[0]!;
  })();
  return { first, closed, ws };
}

describe("an expired peer id", () => {
  it("gets a typed refusal (ERROR + 4411), and the page's fresh id connects", async () => {
    const hourAgo = Date.now() - 2 * 3_600_000;
    const stale = await issuePeerId(DEV_SIGNAL_SECRET, "wnam", 3_600_000, hourAgo);
    const refused = await connect(stale);
    expect(await refused.first).toEqual({
      type: "ERROR",
      payload: { msg: "This id has expired; get a fresh one from GET /v1/signal/peerjs/id" },
    });
    expect(await refused.closed).toBe(SignalCloseCode.Expired);

    // What web/direct/signalling.ts fetchPeerId does: a fresh id, valid for the documented hour.
    const res = await SELF.fetch(`${BASE}/peerjs/id`);
    const fresh = await res.text();
    const expires = peerIdExpiresAt(fresh)!;
    expect(expires - Date.now()).toBeGreaterThan(3_590_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(3_601_000);
    expect(await (await connect(fresh)).first).toEqual({ type: "OPEN" });
  });

  it("is not waited for: an offer to one that is not connected is answered EXPIRE at once", async () => {
    const sender = await connect(await (await SELF.fetch(`${BASE}/peerjs/id`)).text());
    await sender.first;
    const stale = await issuePeerId(DEV_SIGNAL_SECRET, "wnam", 1000, Date.now() - 10_000);
    const replies: PeerServerMessage[] = [];
    const expired = new Promise<void>((resolve) =>
      sender.ws.addEventListener("message", (e) => {
        replies.push(JSON.parse(e.data as string) as PeerServerMessage);
        if (replies.some((m) => m.type === "EXPIRE")) resolve();
      }),
    );
    sender.ws.send(
      JSON.stringify({
        type: "OFFER",
        dst: stale,
        payload: { connectionId: "dc_1", type: "data", sdp: { type: "offer", sdp: "v=0\r\n" } },
      }),
    );
    await expired;
    expect(replies.find((m) => m.type === "EXPIRE")).toMatchObject({ src: stale });
  });
});
