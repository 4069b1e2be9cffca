import { describe, expect, it } from "vitest";
import { addressKey, requestAddressKey } from "./address-key.js";

describe("addressKey: what every per-address limit counts by", () => {
  it("an IPv4 address is its own key, canonical", () => {
    expect(addressKey("198.51.100.7")).toBe("198.51.100.7");
    expect(addressKey(" 198.51.100.7 ")).toBe("198.51.100.7");
    expect(addressKey("010.001.000.009")).toBe("10.1.0.9");
  });

  it("an IPv6 address counts by its /64, however it is written", () => {
    const key = "2001:db8:1:2::/64";
    for (const addr of [
      "2001:db8:1:2::1",
      "2001:0db8:0001:0002:0000:0000:0000:0001",
      "2001:DB8:1:2:ffff:ffff:ffff:fffe",
      "2001:db8:1:2:3:4:5:6",
      "2001:db8:1:2::",
      "[2001:db8:1:2::9]",
      "2001:db8:1:2::9%eth0",
      "2001:db8:1:2:0:0:192.0.2.1",
    ]) {
      expect(addressKey(addr), addr).toBe(key);
    }
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("::")).toBe("0:0:0:0::/64");
    expect(addressKey("fe80::1")).toBe("fe80:0:0:0::/64");
    expect(addressKey("2001:db8::")).toBe("2001:db8:0:0::/64");
  });

  it("an IPv4-mapped IPv6 address is the IPv4 address", () => {
    expect(addressKey("::ffff:198.51.100.7")).toBe("198.51.100.7");
    expect(addressKey("::FFFF:c633:6407")).toBe("198.51.100.7");
    expect(addressKey("0:0:0:0:0:ffff:198.51.100.7")).toBe("198.51.100.7");
  });

  it("garbage becomes a bounded key of safe characters, never an address's", () => {
    expect(addressKey(undefined)).toBe("local");
    expect(addressKey(null)).toBe("local");
    expect(addressKey("   ")).toBe("local");
    for (const bad of [
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "1.2.3.-4",
      "2001:db8::1::2",
      "2001:db8:1:2:3:4:5:6:7",
      "12345::",
      "::ffff:300.1.1.1",
      "g::1",
      ":::",
      "10.1.0.9-tag",
      "<script>\r\n",
      "x".repeat(10_000),
    ]) {
      const key = addressKey(bad);
      expect(key, bad).toMatch(/^other:[0-9A-Za-z.:_-]{1,64}$/);
    }
    expect(addressKey("10.1.0.9-a")).not.toBe(addressKey("10.1.0.9-b"));
  });

  it("a request's key comes from cf-connecting-ip", () => {
    expect(requestAddressKey(new Headers({ "cf-connecting-ip": "2001:db8:1:2::77" }))).toBe(
      "2001:db8:1:2::/64",
    );
    expect(requestAddressKey(new Headers())).toBe("local");
  });
});
