import { describe, expect, it } from "vitest";
import { holdRefusal, MAX_HELD_REFUSALS, REFUSAL_HOLD_MS } from "./early-refusal.js";

/**
 * The hold on refusals past the failed-authentication limit is bounded per isolate: a caller that
 * does not wait for answers must not make the isolate hold requests without bound.
 */
describe("holding refusals", () => {
  it("holds at most MAX_HELD_REFUSALS at once; past it a refusal is answered at once", async () => {
    const settled: boolean[] = [];
    const held = Array.from({ length: MAX_HELD_REFUSALS }, (_, i) => {
      settled[i] = false;
      return holdRefusal().then(() => (settled[i] = true));
    });
    const started = Date.now();
    await holdRefusal();
    expect(Date.now() - started).toBeLessThan(REFUSAL_HOLD_MS / 2);
    // The first thousand are still waiting out their hold.
    expect(settled.filter(Boolean)).toHaveLength(0);
    await Promise.all(held);
    // Once they are answered, the next refusal is held again.
    const again = Date.now();
    await holdRefusal();
    expect(Date.now() - again).toBeGreaterThanOrEqual(REFUSAL_HOLD_MS / 2);
  }, 20_000);
});
