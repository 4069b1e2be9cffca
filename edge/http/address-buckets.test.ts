import { describe, expect, it } from "vitest";
import { AddressBuckets, type AddressBucket } from "./address-buckets.js";

describe("token buckets per address", () => {
  it("refill at their rate, and forget the least recently used address past the bound", () => {
    const buckets = new AddressBuckets<AddressBucket>(20, 10, 2);
    buckets.put("a", { tokens: 0, at: 0 });
    expect(buckets.get("a", 30_000)?.tokens).toBe(5);
    expect(buckets.secondsToOne({ tokens: 0, at: 0 })).toBe(6);
    buckets.put("b", { tokens: 0, at: 30_000 });
    buckets.put("a", buckets.get("a", 30_000)!); // a is now the most recent
    buckets.put("c", { tokens: 0, at: 30_000 });
    expect(buckets.get("b", 30_000)).toBeUndefined();
    expect(buckets.get("a", 30_000)?.tokens).toBe(5);
    // Refilled completely: kept unless asked to forget it.
    expect(buckets.get("c", 300_000)?.tokens).toBe(20);
    expect(buckets.get("c", 300_000, true)).toBeUndefined();
    expect(buckets.get("c", 300_000)).toBeUndefined();
  });
});
