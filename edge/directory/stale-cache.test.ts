import { describe, expect, it } from "vitest";
import { StaleCache } from "./stale-cache.js";

/** A cache over a counter that the test's clock and loader control (reads resolve when told). */
function setup() {
  let now = 0;
  let reads = 0;
  const pending: ((v: number) => void)[] = [];
  const background: Promise<unknown>[] = [];
  const cache = new StaleCache<number>({
    load: () => {
      reads++;
      return new Promise<number>((resolve) => pending.push(resolve));
    },
    freshMs: 1_000,
    maxAgeMs: 10_000,
    background: (work) => void background.push(work),
    now: () => now,
  });
  return {
    cache,
    at: (t: number) => void (now = t),
    reads: () => reads,
    /** Resolve the oldest read still pending with `v`. */
    answer: async (v: number) => {
      pending.shift()?.(v);
      await Promise.all(background);
    },
  };
}

describe("the routing view cache (stale-while-revalidate, bounded age)", () => {
  it("a young view is served without a read", async () => {
    const t = setup();
    const first = t.cache.get();
    await t.answer(1);
    expect(await first).toBe(1);
    t.at(999);
    expect(await t.cache.get()).toBe(1);
    expect(t.reads()).toBe(1);
  });

  it("a view past its fresh age is served at once and refreshed behind the request", async () => {
    const t = setup();
    const first = t.cache.get();
    await t.answer(1);
    await first;
    t.at(1_500);
    // Served now, from memory, while one refresh starts (concurrent requests share it).
    expect(await t.cache.get()).toBe(1);
    expect(await t.cache.get()).toBe(1);
    expect(t.reads()).toBe(2);
    await t.answer(2);
    t.at(1_600);
    expect(await t.cache.get()).toBe(2);
    expect(t.reads()).toBe(2);
  });

  it("a view past its maximum age is never served: the request waits for a new read", async () => {
    const t = setup();
    const first = t.cache.get();
    await t.answer(1);
    await first;
    t.at(10_000);
    const next = t.cache.get();
    await t.answer(2);
    expect(await next).toBe(2);
    expect(t.reads()).toBe(2);
  });

  it("a failed refresh keeps the stale view until the maximum age, then the read is awaited", async () => {
    let now = 0;
    let fail = false;
    let reads = 0;
    const background: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    const cache = new StaleCache<number>({
      load: async () => {
        reads++;
        if (fail) throw new Error("directory unavailable");
        return reads;
      },
      freshMs: 1_000,
      maxAgeMs: 10_000,
      background: (work) => void background.push(work),
      onError: (e) => void errors.push(e),
      now: () => now,
    });
    expect(await cache.get()).toBe(1);
    fail = true;
    now = 5_000;
    expect(await cache.get()).toBe(1);
    await Promise.all(background);
    expect(errors).toHaveLength(1);
    now = 6_000;
    expect(await cache.get()).toBe(1); // retried behind the request, still stale
    await Promise.all(background);
    now = 10_000;
    await expect(cache.get()).rejects.toThrow("directory unavailable");
    fail = false;
    expect(await cache.get()).toBe(5);
  });

  it("`fresh` reads now even while a background refresh is under way", async () => {
    const t = setup();
    const first = t.cache.get();
    await t.answer(1);
    await first;
    t.at(2_000);
    expect(await t.cache.get()).toBe(1); // starts a background read
    const fresh = t.cache.get(true);
    expect(t.reads()).toBe(3);
    await t.answer(2); // the background read, begun first
    await t.answer(3);
    expect(await fresh).toBe(3);
    expect(await t.cache.get()).toBe(3);
  });

  it("a read begun before clear() is not kept", async () => {
    const t = setup();
    const first = t.cache.get();
    t.cache.clear();
    await t.answer(1);
    await first;
    expect(t.cache.peek()).toBeNull();
  });
});
