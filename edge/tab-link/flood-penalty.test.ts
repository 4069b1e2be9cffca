import { runInDurableObject, SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { regionStub } from "../region/region-stub.js";
import { FLOOD_PENALTY_MS, TabConnects } from "../region/tab-connects.js";

/**
 * A flooding tab closed with 4009 used to reconnect at once, within TAB_CONNECTS_PER_MIN, and get a
 * fresh frame budget each time (bench:abuse: 55,600 frames read, closed 10 times in one phase).
 * Now its address may not open a tab socket for FLOOD_PENALTY_MS: the tab link refuses it before
 * the Region is asked, and the Region itself refuses it too (counted in SQLite, for reconnects that
 * reach it through another isolate or after hibernation). Other addresses connect as before.
 */

const tabs: ScriptedTab[] = [];
afterEach(() => {
  tabs.splice(0).forEach((t) => t.close());
});

const FLOODER = "198.51.100.91";

const upgrade = (ip: string) =>
  SELF.fetch("http://tabgrid.test/v1/nodes/connect", {
    headers: { upgrade: "websocket", "cf-connecting-ip": ip },
  });

async function tabAt(ip: string, models: string[]): Promise<ScriptedTab> {
  const tab = await ScriptedTab.open("", { "cf-connecting-ip": ip });
  tabs.push(tab);
  await tab.handshake({ models });
  return tab;
}

async function expectPenalty(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.webSocket).toBeFalsy();
  const body = OpenAIErrorBodySchema.parse(await res.json());
  expect(body.error.code).toBe("tab_flood_penalty");
  expect(body.error.message).toContain("faster than its budget");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(FLOOD_PENALTY_MS / 1000 - 10);
  expect(retryAfter).toBeLessThanOrEqual(FLOOD_PENALTY_MS / 1000);
}

describe("an address whose tab flooded frames", () => {
  it("may not open a tab socket for the penalty; other addresses may", async () => {
    const flooder = await tabAt(FLOODER, ["pen-flood"]);
    const frame = { type: "status", state: "idle", models: ["pen-flood"] } as const;
    for (let i = 0; i < 500 && !flooder.isClosed; i++) flooder.send(frame);
    expect((await flooder.closed).code).toBe(CloseCode.RateLimited);

    // Reconnecting at once, as a flooder does: refused before the upgrade, by the tab link.
    await expectPenalty(await upgrade(FLOODER));
    // The Region counted it too: a reconnect that reaches it through another isolate (whose link
    // never saw the flood) is refused there.
    await expect
      .poll(async () => {
        const res = await regionStub(appEnv, "wnam").fetch(
          new Request("http://region/connect", {
            headers: { upgrade: "websocket", "x-tabgrid-node-ip": FLOODER },
          }),
        );
        res.webSocket?.accept();
        res.webSocket?.close(1000);
        return res.status;
      })
      .toBe(429);

    // Another address is not affected, and its tab works.
    const other = await tabAt("198.51.100.92", ["pen-other"]);
    expect(other.isClosed).toBe(false);
  });

  it("for an IPv6 flooder, is its whole /64's", async () => {
    const flooder = await tabAt("2001:db8:91:1::1", ["pen-flood-v6"]);
    const frame = { type: "status", state: "idle", models: ["pen-flood-v6"] } as const;
    for (let i = 0; i < 500 && !flooder.isClosed; i++) flooder.send(frame);
    expect((await flooder.closed).code).toBe(CloseCode.RateLimited);
    // Before: the next address of the same /64 connected at once with a fresh budget.
    await expectPenalty(await upgrade("2001:db8:91:1:ffff::2"));
    const other = await tabAt("2001:db8:91:2::1", ["pen-other-v6"]);
    expect(other.isClosed).toBe(false);
  });

  it("is counted in the Region's SQLite until the penalty ends", async () => {
    await runInDurableObject(regionStub(appEnv, "wnam"), (_region, ctx) => {
      const connects = new TabConnects(ctx.storage.sql, 60);
      const t = 5_000_000;
      expect(connects.penaltyS("192.0.2.9", t)).toBeNull();
      connects.penalize("192.0.2.9", t);
      expect(connects.penaltyS("192.0.2.9", t)).toBe(FLOOD_PENALTY_MS / 1000);
      expect(connects.penaltyS("192.0.2.9", t + FLOOD_PENALTY_MS - 1500)).toBe(2);
      expect(connects.penaltyS("192.0.2.10", t)).toBeNull();
      expect(connects.penaltyS("192.0.2.9", t + FLOOD_PENALTY_MS)).toBeNull();
      // Another instance over the same storage (after hibernation or eviction) still sees it.
      connects.penalize("192.0.2.9", t);
      expect(new TabConnects(ctx.storage.sql, 60).penaltyS("192.0.2.9", t + 1000)).toBe(59);
    });
  });
});
