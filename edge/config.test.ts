import { describe, expect, it, vi } from "vitest";
import { parseVars, readConfig, streamIdleMs } from "./config.js";

describe("readConfig", () => {
  it("takes defaults for unset and empty variables, silently", () => {
    const spy = vi.spyOn(console, "warn").mockImplementation(() => {});
    const config = readConfig({ ICE_SERVERS: "", ANONYMOUS_TIER: "off" });
    expect(config.region.leaseMs).toBe(30_000);
    expect(config.anonymous).toEqual({ on: false, rpm: 10, concurrent: 1 });
    expect(config.iceServers).toEqual({ iceServers: [] });
    expect(config.adminToken).toBeNull();
    expect(config.fallback).toBeNull();
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });

  it("parses valid values, once per env object", () => {
    const env = {
      LEASE_MS: "1500",
      ANONYMOUS_TIER: "on",
      ANONYMOUS_RPM: "7",
      ALLOW_LOCATION_HEADER: "true",
      STREAM_IDLE_MS: "400",
      ICE_SERVERS: JSON.stringify([{ urls: "stun:stun.example.org" }]),
    };
    const config = readConfig(env);
    expect(config.region.leaseMs).toBe(1500);
    expect(config.anonymous).toEqual({ on: true, rpm: 7, concurrent: 1 });
    expect(config.allowLocationHeader).toBe(true);
    expect(config.iceServers.iceServers).toHaveLength(1);
    expect(streamIdleMs(env)).toBe(400);
    expect(readConfig(env)).toBe(config);
  });

  it("an invalid value keeps the default and logs one warning naming the variable", () => {
    const spy = vi.spyOn(console, "warn").mockImplementation(() => {});
    const env = { LEASE_MS: "soon", ANONYMOUS_RPM: "2.5", ICE_SERVERS: "[{", ADMIN_TOKEN: "" };
    const config = readConfig(env);
    readConfig(env);
    expect(config.region.leaseMs).toBe(30_000);
    expect(config.anonymous.rpm).toBe(10);
    expect(config.iceServers).toEqual({ iceServers: [] });
    expect(spy).toHaveBeenCalledTimes(3);
    expect(String(spy.mock.calls[0]?.[0])).toContain("LEASE_MS");
    spy.mockRestore();
  });

  it("never writes a secret's value into a warning", () => {
    const { warnings } = parseVars({ FALLBACK_API_KEY: 42 as unknown as string });
    expect(warnings[0]).toContain("(secret)");
    expect(warnings[0]).not.toContain("42");
  });
});
