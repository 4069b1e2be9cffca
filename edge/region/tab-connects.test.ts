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

/** Open a socket and close it at once, as a reconnect loop does; the upgrade's status. */
async function openAndClose(ip: string): Promise<number> {
  const res = await open(ip);
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "loop");
  }
  return res.status;
}

describe("tab reconnects per address", () => {
  it("an address looping open/close gets 429 too_many_connects after the limit; another address does not", async () => {
    const looper = "198.51.100.23";
    // In batches (the limit counts connects, not open sockets), so the loop is quick.
    const BATCH = 10;
    const statuses: number[] = [];
    for (let done = 0; done < perMinute; done += BATCH) {
      const n = Math.min(BATCH, perMinute - done);
      statuses.push(...(await Promise.all(Array.from({ length: n }, () => openAndClose(looper)))));
    }
    expect(statuses.filter((s) => s === 101)).toHaveLength(perMinute);

    const refused = await open(looper);
    expect(refused.status).toBe(429);
    expect(refused.webSocket).toBeFalsy();
    const body = OpenAIErrorBodySchema.parse(await refused.json());
    expect(body.error.code).toBe("too_many_connects");
    expect(body.error.message).toContain(`${perMinute} per minute`);
    // One connect comes back within a minute's share of the limit (60 s ÷ perMinute, rounded up).
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(60 / perMinute));

    expect(await openAndClose("198.51.100.24")).toBe(101);
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
