import { describe, expect, it } from "vitest";
import { DEV_SIGNAL_SECRET, parseVars, readConfig } from "../config.js";
import { checkPeerId, isIssuedPeerId, issuePeerId, peerIdExpiresAt } from "./peer-ids.js";

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

describe("issued peer ids expire", () => {
  it("open sockets only until the time written (and signed) in them", async () => {
    const secret = "s".repeat(32);
    const now = 1_800_000_000_000;
    const id = await issuePeerId(secret, "weur", 60_000, now);
    expect(id).toMatch(/^tg-weur-[0-9a-f]{32}$/);
    expect(peerIdExpiresAt(id)).toBe(now + 60_000);
    expect(await checkPeerId(secret, id, now + 59_000)).toBe("issued");
    expect(await checkPeerId(secret, id, now + 60_000)).toBe("expired");
    expect(await isIssuedPeerId(secret, id, now + 61_000)).toBe(false);
    // The time is covered by the tag: pushing it later makes the id one never issued.
    const later = id.replace(
      /-([0-9a-f]{8})/,
      (_m, t: string) => `-${(parseInt(t, 16) + 3600).toString(16)}`,
    );
    expect(await checkPeerId(secret, later, now)).toBe("not_issued");
  });

  it("reads SIGNAL_PEER_ID_TTL_MS, default one hour", () => {
    expect(readConfig({} as never).signal.peerIdTtlMs).toBe(3_600_000);
    expect(readConfig({ SIGNAL_PEER_ID_TTL_MS: "5000" } as never).signal.peerIdTtlMs).toBe(5000);
  });
});
