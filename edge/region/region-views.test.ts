import { describe, expect, it } from "vitest";
import { emptyCounts, windowStats, type RegionStatsSummary } from "./region-stats.js";
import { MAX_REPORTED_OTHER_MODELS, statusOf, summarise } from "./region-views.js";
import type { TabRecord } from "./tab-registry.js";

/**
 * A region's summary for the Directory keeps the catalog's models and the made-up names served by
 * the most tabs, whatever names tabs announce (region-views.ts `summarise`, `statusOf`): what
 * routing and the listings read of it, and its size.
 */

const CATALOG = "Catalog-Model-q4f32_1-MLC";
const isCatalog = (m: string) => m === CATALOG;

function tab(models: string[], state: TabRecord["state"] = "idle"): TabRecord {
  return {
    models,
    state,
    jobId: null,
    gpu: null,
    lat: 37,
    lon: -122,
    busyUntil: 0,
  } as unknown as TabRecord;
}

/** `n` tabs each announcing 32 names no other tab announces, built by `name`. */
function junkTabs(n: number, name: (t: number, j: number) => string): TabRecord[] {
  return Array.from({ length: n }, (_, t) => tab(Array.from({ length: 32 }, (_, j) => name(t, j))));
}

function stats(models: string[]): RegionStatsSummary {
  const w = windowStats(emptyCounts());
  const figures = {
    done: 1_000_000,
    tokens: 1_000_000_000,
    decodeMs: 1_000_000_000,
    serviceMs: 1_000_000_000,
    tokensPerS: 1000.5,
    meanServiceMs: 1_000_000,
  };
  return {
    at: Date.now(),
    windows: { "5m": w, "1h": w, "1d": w },
    total: emptyCounts(),
    models: Object.fromEntries(models.map((m) => [m, figures])),
  };
}

describe("a region's summary", () => {
  it("keeps catalog models and the most-served other names, and counts the rest", () => {
    const tabs = [
      ...junkTabs(100, (t, j) => `junk-${t}-${j}`),
      // One tab serves the catalog model: made-up names on more tabs do not push it out.
      tab([CATALOG]),
      // A made-up name three tabs serve ranks above names one tab serves, whatever its spelling.
      ...Array.from({ length: 3 }, () => tab(["zz-popular"], "busy")),
    ];
    const s = summarise(tabs, isCatalog);
    expect(s.nodes).toBe(104);
    expect(s.models[CATALOG]).toEqual({ nodes: 1, idle: 1 });
    expect(s.models["zz-popular"]).toEqual({ nodes: 3, idle: 0 });
    expect(Object.keys(s.models)).toHaveLength(1 + MAX_REPORTED_OTHER_MODELS);
    expect(s.otherModels).toBe(100 * 32 + 1 - MAX_REPORTED_OTHER_MODELS);
    // Below the cap nothing is left out.
    const few = summarise(
      junkTabs(2, (t, j) => `few-${t}-${j}`),
      isCatalog,
    );
    expect(Object.keys(few.models)).toHaveLength(64);
    expect(few.otherModels).toBeUndefined();
  });

  it("stays small with the longest names JSON can make of a tab's 200 UTF-16 units", () => {
    // A control character is 1 UTF-16 unit and 6 bytes as JSON ("\u0001").
    const long = (t: number, j: number) => `${t}-${j}-`.padEnd(200, "\u0001");
    const tabs = junkTabs(500, long);
    const summary = summarise(tabs, isCatalog);
    // Requests wait for as many other names of a client's 256 bytes as the queue holds.
    const queued = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [`${i}-`.padEnd(256, "\u0001"), 1]),
    );
    const reported = [...Object.keys(summary.models), ...Object.keys(queued)];
    const status = statusOf(tabs, summary, queued, stats(reported), { lat: 37, lon: -122 });
    const bytes = new TextEncoder().encode(JSON.stringify({ ...summary, status })).length;
    console.log(`500 tabs × 32 names of 200 escaped units, 1,000 waiting names: ${bytes} bytes`);
    expect(Object.keys(status.models)).toHaveLength(2 * MAX_REPORTED_OTHER_MODELS);
    expect(Object.keys(status.stats.models)).toHaveLength(2 * MAX_REPORTED_OTHER_MODELS);
    expect(bytes).toBeLessThan(600_000);
  });
});
