import { describe, expect, it, vi } from "vitest";
import { readConfig } from "../config.js";
import { QueueClass } from "../../shared/scheduling/wait-queue.js";
import { holdFor, priceOfClass, queueClassOf, requestedTier } from "./tiers.js";

describe("the latency tiers' price table", () => {
  it("has documented defaults and takes the operator's prices; a bad price keeps the default", () => {
    expect(readConfig({}).credits).toEqual({
      interactiveBudgetMs: 10_000,
      price: { interactive: 2, batch: 1 },
      weight: { interactive: 2, batch: 1 },
      models: "catalog",
    });
    const spy = vi.spyOn(console, "warn").mockImplementation(() => {});
    const credits = readConfig({
      CREDIT_PRICE_INTERACTIVE: "5",
      CREDIT_PRICE_BATCH: "-1",
      INTERACTIVE_BUDGET_MS: "2500",
    }).credits;
    expect(credits.price).toEqual({ interactive: 5, batch: 1 });
    expect(credits.interactiveBudgetMs).toBe(2500);
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
    // A request sets aside the most it can cost; base and keyless places are free.
    expect(holdFor(credits, "interactive", 100)).toBe(500);
    expect(holdFor(credits, "batch", 100)).toBe(100);
    expect(priceOfClass(credits, QueueClass.key)).toBe(0);
    expect(priceOfClass(credits, QueueClass.anonymous)).toBe(0);
  });

  it("orders the paid places ahead of the base tier and the keyless tier", () => {
    expect(queueClassOf("interactive")).toBeLessThan(queueClassOf("batch"));
    expect(queueClassOf("batch")).toBeLessThan(QueueClass.key);
    expect(QueueClass.key).toBeLessThan(QueueClass.anonymous);
    expect(requestedTier(undefined, true)).toBeNull();
    expect(requestedTier(" Batch ", true)).toBe("batch");
    expect(() => requestedTier("interactive", false)).toThrow(/needs an API key/);
    expect(() => requestedTier("gold", true)).toThrow(/must be one of/);
  });
});
