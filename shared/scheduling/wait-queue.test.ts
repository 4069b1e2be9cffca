import { describe, expect, it } from "vitest";
import { QueueClass, WaitQueue, retryAfterSeconds } from "./wait-queue.js";

describe("WaitQueue", () => {
  it("is bounded and answers full with a retry-after", () => {
    const q = new WaitQueue<string>({ capacity: 2, defaultRetryAfterMs: 3000 });
    expect(q.enqueue("a", "m", 1, 0)).toEqual({ kind: "queued", position: 1 });
    expect(q.enqueue("b", "m", 1, 0)).toEqual({ kind: "queued", position: 2 });
    expect(q.enqueue("c", "m", 0, 0)).toEqual({ kind: "full", retryAfterMs: 3000 });
    expect(q.size).toBe(2);
  });

  it("serves higher priority first, arrival order within a class", () => {
    const q = new WaitQueue<string>({ capacity: 10 });
    q.enqueue("low1", "m", 2, 0);
    q.enqueue("norm1", "m", 1, 1);
    q.enqueue("low2", "m", 2, 2);
    expect(q.enqueue("high", "m", 0, 3)).toEqual({ kind: "queued", position: 1 });
    const order: string[] = [];
    for (let t = 10; q.size > 0; t++) order.push(q.takeFirst(() => true, t)!.id);
    expect(order).toEqual(["high", "norm1", "low1", "low2"]);
  });

  it("serves the credit tiers' places first: interactive, batch, keys, then keyless", () => {
    const q = new WaitQueue<string>({ capacity: 10 });
    q.enqueue("keyless", "m", QueueClass.anonymous, 0);
    q.enqueue("key", "m", QueueClass.key, 1);
    q.enqueue("batch", "m", QueueClass.batch, 2);
    q.enqueue("interactive", "m", QueueClass.interactive, 3);
    const order: string[] = [];
    for (let t = 10; q.size > 0; t++) order.push(q.takeFirst(() => true, t)!.id);
    expect(order).toEqual(["interactive", "batch", "key", "keyless"]);
  });

  it("skips requests a freed tab cannot serve instead of blocking on them", () => {
    const q = new WaitQueue<string>({ capacity: 10 });
    q.enqueue("rare", "7B", 1, 0);
    q.enqueue("common", "1B", 1, 5);
    expect(q.takeFirst((model) => model === "1B", 20)).toEqual({
      id: "common",
      item: "1B",
      waitedMs: 15,
    });
    expect(q.takeFirst((model) => model === "1B", 20)).toBeNull();
    expect(q.size).toBe(1);
  });

  it("bases retry-after on the observed drain rate, clamped", () => {
    const q = new WaitQueue<number>({
      capacity: 3,
      minRetryAfterMs: 1000,
      maxRetryAfterMs: 60_000,
    });
    for (let i = 0; i < 3; i++) q.enqueue(`r${i}`, i, 1, 0);
    q.takeFirst(() => true, 0);
    q.takeFirst(() => true, 4000);
    q.takeFirst(() => true, 8000);
    for (let i = 0; i < 3; i++) q.enqueue(`s${i}`, i, 1, 8000);
    const full = q.enqueue("x", 0, 1, 8000);
    expect(full).toEqual({ kind: "full", retryAfterMs: 4000 });
    expect(retryAfterSeconds(4000)).toBe(4);
    expect(retryAfterSeconds(1)).toBe(1);
  });

  it("removes cancelled requests and expires ones that waited too long", () => {
    const q = new WaitQueue<string>({ capacity: 5 });
    q.enqueue("a", "m", 1, 0);
    q.enqueue("b", "m", 1, 500);
    q.enqueue("c", "m", 0, 900);
    expect(q.remove("b")).toBe(true);
    expect(q.remove("b")).toBe(false);
    expect(q.expire(1600, 1000).map((g) => g.id)).toEqual(["a"]);
    expect(q.size).toBe(1);
  });
});
