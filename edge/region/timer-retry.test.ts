import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import type { RegionParts } from "./region-parts.js";
import type { RegionTimer } from "./region-timers.js";

const appEnv = env as unknown as AppEnv;

/** The live object's parts (private to it; reached into the way a debugger would). */
const partsOf = (obj: unknown) => (obj as { parts: RegionParts }).parts;

describe("Region timers survive a failing handler", () => {
  it("a timer whose handler throws is retried by the runtime and not lost", async () => {
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("timer-retry"));
    const calls: string[] = [];
    await runInDurableObject(stub, async (obj) => {
      const parts = partsOf(obj);
      const real = parts.onTimer;
      // The first run of the report timer fails, as a handler hitting a transient error would.
      parts.onTimer = async (timer: RegionTimer) => {
        if (timer.kind !== "report") return real(timer);
        calls.push(calls.length === 0 ? "threw" : "ran");
        if (calls.length === 1) throw new Error("transient failure in the report handler");
        return real(timer);
      };
      await parts.timers.set({ kind: "report" }, Date.now());
    });
    // No test drives the alarm: the runtime fires it, alarm() rethrows, and it fires again.
    await expect
      .poll(() => [...calls], { timeout: 15_000, interval: 100 })
      .toEqual(["threw", "ran"]);
    await expect
      .poll(() =>
        runInDurableObject(stub, async (obj) => partsOf(obj).timers.has({ kind: "report" })),
      )
      .toBe(false);
  }, 20_000);
});
