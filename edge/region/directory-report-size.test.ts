import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import { directoryStub } from "../directory/directory-client.js";
import type { RegionSummary } from "./region-views.js";

/**
 * A Region's report to the global Directory carries the model names its tabs announce (summary
 * models, status models, shard figures). Cloudflare's SQLite Durable Objects refuse a string or
 * row over 2 MB (local workerd does not enforce it), so a report that grew with every name tabs
 * invent would fail in production (only logged, region-report.ts) and freeze its region's
 * routing row and public figures. Here 60 tabs each announce 32 names of 200 characters (model
 * ids are ASCII since 17417e9; ~6.4 KB of names per tab); the report keeps the catalog's models and the
 * made-up names served by the most tabs, so routing still finds those (region-views.ts
 * `summarise`).
 */
const tabs = useTabs();
const ADDRESSES = ["198.51.100.11", "198.51.100.12"];
const PER_ADDRESS = 30;
/** A catalog model (EXTRA_MODELS of the tests, vitest.config.ts) and a name two tabs serve. */
const CATALOG_MODEL = "Operator-Test-Model-q4f32_1-MLC";
const POPULAR = "zz-popular-name";
/** Cloudflare's limit on a string, BLOB or row in a SQLite-backed Durable Object. */
const DO_SQLITE_ROW_LIMIT = 2_000_000;

/** 32 made-up model ids of the longest length a tab may announce (model-id.ts: ASCII only). */
function junkNames(t: number): string[] {
  return Array.from({ length: 32 }, (_, j) => {
    const prefix = `${t}-${j}-`;
    return prefix + "x".repeat(200 - prefix.length);
  });
}

interface Row {
  region: string;
  bytes: number;
  summary: RegionSummary;
}

/** The Directory's largest row: its region, its size in bytes (UTF-8) and its summary. */
async function largestRow(): Promise<Row> {
  return runInDurableObject(directoryStub(appEnv), async (_o, state) => {
    const rows = state.storage.sql
      .exec<{ region: string; bytes: number; summary: string }>(
        `SELECT region, length(CAST(summary AS BLOB)) AS bytes, summary
         FROM regions ORDER BY bytes DESC LIMIT 1`,
      )
      .toArray();
    const row = rows[0];
    if (!row) return { region: "", bytes: 0, summary: { models: {}, nodes: 0, queued: 0 } };
    return { ...row, summary: JSON.parse(row.summary) as RegionSummary };
  });
}

describe("a region's Directory report", () => {
  it(
    "stays below the Durable Object SQLite row limit whatever names tabs announce",
    { timeout: 120_000 },
    async () => {
      let t = 0;
      for (const ip of ADDRESSES) {
        for (let i = 0; i < PER_ADDRESS; i++, t++) {
          const tab = await ScriptedTab.open("", { "cf-connecting-ip": ip });
          await tab.handshake({ models: junkNames(t) });
          tabs.list.push(tab);
        }
      }
      for (let i = 0; i < 2; i++, t++) {
        const tab = await ScriptedTab.open("", { "cf-connecting-ip": "198.51.100.13" });
        await tab.handshake({ models: [CATALOG_MODEL, POPULAR] });
        tabs.list.push(tab);
      }
      // The region's report after its last tab joined.
      await expect
        .poll(async () => (await largestRow()).summary.nodes, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(t);
      const row = await largestRow();
      console.log(`${t} tabs: the Directory's row for ${row.region} is ${row.bytes} bytes`);
      expect(row.bytes).toBeLessThan(DO_SQLITE_ROW_LIMIT);
      // At most 64 names outside the catalog, whatever tabs announce (1,920 here).
      const named = Object.keys(row.summary.models).filter((m) => m !== CATALOG_MODEL);
      expect(named.length).toBeLessThanOrEqual(64);
      // What routing reads: the catalog model and the name two tabs serve are there.
      expect(row.summary.models[CATALOG_MODEL]?.nodes).toBeGreaterThanOrEqual(2);
      expect(row.summary.models[POPULAR]?.nodes).toBe(2);
      // And spillover between regions: the catalog model is among the (16) models offered.
      expect(row.summary.offers?.[CATALOG_MODEL]).toBeDefined();
    },
  );
});
