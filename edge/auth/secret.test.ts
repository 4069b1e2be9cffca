import { afterEach, describe, expect, it, vi } from "vitest";
import { sameSecret } from "./api-key.js";
import { timingSafeEqual } from "./secret.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("timingSafeEqual", () => {
  it("answers like ===", () => {
    expect(timingSafeEqual("token", "token")).toBe(true);
    expect(timingSafeEqual("token", "tokem")).toBe(false);
    expect(timingSafeEqual("token", "token-longer")).toBe(false);
    expect(timingSafeEqual("", "")).toBe(true);
    expect(timingSafeEqual("", "x")).toBe(false);
    // Padding with zero bytes must not make a prefix equal.
    expect(timingSafeEqual("ab", "ab\u0000")).toBe(false);
  });

  it("compares the bytes even when the lengths differ (no early return)", () => {
    const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
    expect(sameSecret("test-admin-token-0123456789", "x")).toBe(false);
    expect(spy).toHaveBeenCalledTimes(1);
    const [a, b] = spy.mock.calls[0] as [ArrayBufferView, ArrayBufferView];
    expect(a.byteLength).toBe(b.byteLength);
  });
});
