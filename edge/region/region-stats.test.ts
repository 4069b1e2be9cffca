import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import type { JobRow } from "./job-store.js";
import type { RegionDurableObject } from "./region-do.js";
import { DECODE_TPS_MAX } from "../../shared/gpu/plausible.js";
import { quantile, RegionStats, TPS_BOUNDS, TTFT_BOUNDS_MS } from "./region-stats.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A job row with what the telemetry reads. */
function row(over: Partial<JobRow>): JobRow {
  return {
    id: "job",
    model: "m",
    state: "streaming",
    created_at: 0,
    dispatched_at: 0,
    first_token_at: null,
    attempt_start_chars: 0,
    text: "",
    completion_tokens: null,
    ...over,
  } as JobRow;
}

/** Run `fn` with a fresh RegionStats on a Region object's SQLite and a hand-driven clock. */
async function withStats(
  name: string,
  fn: (make: () => RegionStats, clock: { now: number }) => void,
) {
  const stub = appEnv.REGION.get(appEnv.REGION.idFromName(name));
  await runInDurableObject(stub, (_o: RegionDurableObject, ctx) => {
    const clock = { now: Date.UTC(2026, 10, 1, 12, 0, 30) };
    fn(() => new RegionStats(ctx.storage.sql, () => clock.now), clock);
  });
}

describe("region telemetry", () => {
  it("quantiles interpolate inside buckets like histogram_quantile", () => {
    const counts = new Array<number>(TTFT_BOUNDS_MS.length + 1).fill(0);
    counts[3] = 10; // ten samples in (250, 500]
    expect(quantile(TTFT_BOUNDS_MS, counts, 0.5)).toBe(375);
    expect(quantile(TTFT_BOUNDS_MS, counts, 0.99)).toBeCloseTo(497.5, 5);
    counts[TTFT_BOUNDS_MS.length] = 90; // most in the overflow bucket: the last finite bound
    expect(quantile(TTFT_BOUNDS_MS, counts, 0.95)).toBe(30_000);
    expect(quantile(TTFT_BOUNDS_MS, new Array<number>(13).fill(0), 0.5)).toBeNull();
  });

  it("windows keep 5 minutes, an hour and a day; old slots are dropped; totals survive", async () => {
    await withStats("stats-unit-windows", (make, clock) => {
      const stats = make();
      const ttft = (ms: number) => {
        stats.firstToken(row({ created_at: clock.now - ms }));
        stats.settled(
          row({
            state: "done",
            created_at: clock.now - ms - 1000,
            first_token_at: clock.now - 1000,
            text: "abcdefghij",
            completion_tokens: 20,
          }),
        );
      };
      ttft(400); // now
      clock.now += 10 * MINUTE;
      ttft(1200); // 10 minutes later: the first one left the 5-minute window
      let s = stats.summary();
      expect(s.windows["5m"].requests).toBe(1);
      expect(s.windows["5m"].ttftMs?.p50).toBeGreaterThan(1000);
      expect(s.windows["1h"].requests).toBe(2);
      // Tokens are capped at the characters the tab delivered (10), over 1 s of decoding.
      expect(s.windows["1h"].tokens).toBe(20);
      expect(s.models["m"]?.tokensPerS).toBe(10);
      clock.now += 2 * HOUR;
      ttft(100);
      s = make().summary(); // a new instance reads the same slots back from SQLite
      expect(s.windows["5m"].requests).toBe(1);
      expect(s.windows["1h"].requests).toBe(1);
      expect(s.windows["1d"].requests).toBe(3);
      clock.now += 25 * HOUR;
      const fresh = make();
      fresh.settled(row({ state: "failed" }));
      s = fresh.summary();
      expect(s.windows["1d"].requests).toBe(1);
      expect(s.windows["1d"].failed).toBe(1);
      expect(s.total.done).toBe(3);
      expect(s.total.failed).toBe(1);
    });
  });

  it("stays bounded: at most 60 minute slots, 24 hour slots and the total", async () => {
    await withStats("stats-unit-bounded", (make, clock) => {
      const stats = make();
      for (let i = 0; i < 3 * 24 * 60; i += 7) {
        clock.now += 7 * MINUTE;
        stats.settled(row({ state: "cancelled" }));
      }
      expect(stats.summary().total.cancelled).toBe(Math.ceil((3 * 24 * 60) / 7));
    });
    const stub = appEnv.REGION.get(appEnv.REGION.idFromName("stats-unit-bounded"));
    await runInDurableObject(stub, (_o: RegionDurableObject, ctx) => {
      const n = ctx.storage.sql
        .exec<{ n: number }>(`SELECT count(*) AS n FROM region_stats`)
        .one().n;
      expect(n).toBeLessThanOrEqual(60 + 24 + 1);
    });
  });

  it("a job decoded faster than any GPU can counts at the plausible ceiling, tokens and all", async () => {
    await withStats("stats-unit-decode-ceiling", (make, clock) => {
      const stats = make();
      // The whole answer in one frame, done 2 ms later: 1,000,000 tokens/s as observed.
      const dump = (model: string, tokens: number) =>
        stats.settled(
          row({
            model,
            state: "done",
            first_token_at: clock.now - 2,
            text: "a".repeat(tokens),
            completion_tokens: tokens,
          }),
        );
      dump("tab-named-model", 2000);
      dump("Llama-3.1-8B-Instruct-q4f16_1-MLC", 1000);
      const s = stats.summary();
      expect(s.models["tab-named-model"]).toMatchObject({ tokens: 2000, decodeMs: 2000 });
      expect(s.models["tab-named-model"]?.tokensPerS).toBe(DECODE_TPS_MAX);
      // 8B weights bound it lower (shared/gpu/plausible.ts): ~498 tokens/s.
      expect(s.models["Llama-3.1-8B-Instruct-q4f16_1-MLC"]?.tokensPerS).toBeCloseTo(497.8, 0);
      // What /metrics sums: 3000 tokens over 4009 ms; the histogram's overflow holds the first.
      expect(s.total.tokens).toBe(3000);
      expect((s.total.tokens * 1000) / s.total.decodeMs).toBeLessThanOrEqual(DECODE_TPS_MAX);
      expect(s.total.tps[TPS_BOUNDS.length]).toBe(1);
    });
  });
});
