import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SignalCloseCode } from "../../shared/protocol/peerjs-messages.js";

/**
 * Production defaults: no SIGNAL_SECRET and no development variable, so there is no key to sign
 * peer ids with. Nothing is issued and no socket opens (the relay still carries every answer); the
 * public development key is never used.
 */
const BASE = "http://tabgrid.test/v1/signal";

describe("signalling without SIGNAL_SECRET (production defaults)", () => {
  it("issues no peer id: 503 signalling_unavailable", async () => {
    const res = await SELF.fetch(`${BASE}/peerjs/id`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("signalling_unavailable");
  });

  it("refuses every socket with a typed close, even for an id signed with the development key", async () => {
    const id = `tg-wnam-${"0123456789abcdef".repeat(2)}`;
    const q = new URLSearchParams({ key: "peerjs", id, token: "t" });
    const res = await SELF.fetch(`${BASE}/peerjs?${q}`, { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const first = new Promise<string>((r) =>
      ws.addEventListener("message", (e) => r(e.data as string)),
    );
    const closed = new Promise<number>((r) => ws.addEventListener("close", (e) => r(e.code)));
    ws.accept();
    expect(JSON.parse(await first)).toMatchObject({ type: "ERROR" });
    expect(await closed).toBe(SignalCloseCode.Unavailable);
  });
});
