import { describe, expect, it } from "vitest";
import { DEV_SIGNAL_SECRET, parseVars, readConfig } from "../config.js";
import { isIssuedPeerId, issuePeerId } from "./peer-ids.js";

describe("issued peer ids", () => {
  it("verify only with the key that signed them, in the shard they name", async () => {
    const secret = "s".repeat(32);
    const id = await issuePeerId(secret, "weur");
    expect(id).toMatch(/^tg-weur-[0-9a-f]{32}$/);
    expect(await isIssuedPeerId(secret, id)).toBe(true);
    expect(await isIssuedPeerId("t".repeat(32), id)).toBe(false);
    // The tag covers the shard: moving an id to another shard breaks it.
    expect(await isIssuedPeerId(secret, id.replace("-weur-", "-enam-"))).toBe(false);
    expect(await isIssuedPeerId(secret, "alice")).toBe(false);
    expect(await isIssuedPeerId(secret, `tg-zzzz-${"0".repeat(32)}`)).toBe(false);
  });

  it("signs with SIGNAL_SECRET; the development key only when a development variable says so", () => {
    const cfg = (vars: Record<string, string>) => readConfig(vars as never).signal.secret;
    expect(cfg({})).toBeNull();
    expect(cfg({ SIGNAL_DEV_SECRET: "true" })).toBe(DEV_SIGNAL_SECRET);
    expect(cfg({ ALLOW_LOCATION_HEADER: "true" })).toBe(DEV_SIGNAL_SECRET);
    expect(cfg({ SIGNAL_SECRET: "k".repeat(20), SIGNAL_DEV_SECRET: "true" })).toBe("k".repeat(20));
    // Too short a secret is refused with a warning that does not show it, and no id is issued.
    const { warnings } = parseVars({ SIGNAL_SECRET: "short" });
    expect(warnings[0]).toMatch(/SIGNAL_SECRET=\(secret\)/);
    expect(cfg({ SIGNAL_SECRET: "short" })).toBeNull();
  });

  it("reads the signalling limits with their defaults", () => {
    expect(readConfig({} as never).signal).toMatchObject({
      maxPeersPerIp: 20,
      framesPerSecond: 20,
      frameBurst: 100,
    });
    expect(readConfig({ SIGNAL_MAX_PEERS_PER_IP: "5" } as never).signal.maxPeersPerIp).toBe(5);
  });
});
