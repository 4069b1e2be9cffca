import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { readConfig } from "../config.js";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";
import { TabConnects } from "./tab-connects.js";

/**
 * An address that opens and closes tab sockets in a loop (issue 11): each connect makes the Region
 * accept, challenge and time out a socket, so past TAB_CONNECTS_PER_MIN a minute the upgrade is
 * refused with 429 before it reaches a socket, while other addresses connect as before.
 */

const perMinute = readConfig(appEnv).region.tabConnectsPerMinute;

const open = (ip: string) =>
  SELF.fetch("http://tabgrid.test/v1/nodes/connect", {
    headers: { upgrade: "websocket", "cf-connecting-ip": ip },
  });

/** Open a socket and close it at once, as a reconnect loop does; the upgrade's response. */
async function openAndClose(ip: string): Promise<Response> {
  const res = await open(ip);
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "loop");
  }
  return res;
}

describe("tab reconnects per address", () => {
  it("an address looping open/close gets 429 too_many_connects after the limit; another address does not", async () => {
    const looper = "198.51.100.23";
    // In batches (the limit counts connects, not open sockets), so the loop is quick. The bucket
    // refills while the loop runs (perMinute ÷ 60 a second), so a few more than perMinute get in.
    const BATCH = 10;
    const started = Date.now();
    let accepted = 0;
    let refused: Response | undefined;
    while (!refused && accepted < 2 * perMinute) {
      const answers = await Promise.all(Array.from({ length: BATCH }, () => openAndClose(looper)));
      accepted += answers.filter((r) => r.status === 101).length;
      refused = answers.find((r) => r.status !== 101);
    }
    const refilled = Math.ceil(((Date.now() - started) / 60_000) * perMinute);
    expect(accepted).toBeGreaterThanOrEqual(perMinute);
    expect(accepted).toBeLessThanOrEqual(perMinute + refilled);
    expect(refused?.status).toBe(429);
    if (!refused) return;
    expect(refused.webSocket).toBeFalsy();
    const body = OpenAIErrorBodySchema.parse(await refused.json());
    expect(body.error.code).toBe("too_many_connects");
    expect(body.error.message).toContain(`${perMinute} per minute`);
    // One connect comes back within a minute's share of the limit (60 s ÷ perMinute, rounded up).
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(60 / perMinute));

    expect((await openAndClose("198.51.100.24")).status).toBe(101);
  });

  it("gives a refused address one connect back per 60 s ÷ limit, and counts each address apart", async () => {
    await runInDurableObject(regionStub(appEnv, "wnam"), (_region, ctx) => {
      const connects = new TabConnects(ctx.storage.sql, 2);
      const t = 1_000_000;
      expect(connects.take("192.0.2.1", t)).toBeNull();
      expect(connects.take("192.0.2.1", t)).toBeNull();
      expect(connects.take("192.0.2.1", t)).toBe(30);
      expect(connects.take("192.0.2.2", t)).toBeNull();
      expect(connects.take("192.0.2.1", t + 20_000)).toBe(10);
      expect(connects.take("192.0.2.1", t + 30_000)).toBeNull();
      expect(connects.take("192.0.2.1", t + 30_000)).toBe(30);
    });
  });
});
