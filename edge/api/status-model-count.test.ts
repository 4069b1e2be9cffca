import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ModelView, NetworkView, RegionView } from "../../shared/status/status-views.js";
import { useTabs } from "../../test/workerd/tab-helpers.js";
import { MAX_LISTED_OTHER_MODELS } from "../model-catalog.js";

/**
 * GET /v1/status `models` (the public "serving N models") counts what the model listing shows: a
 * tab may announce any 32 names, and the listings show at most MAX_LISTED_OTHER_MODELS names
 * outside the catalog (model-catalog.ts `listedModels`), so the headline must not count more.
 * Three regions each hold 32 made-up names (each under the per-region cap): 96 in all.
 */
const tabs = useTabs();
const ORIGIN = "http://tabgrid.test";
// Johannesburg, Dubai, São Paulo.
const PLACES = [
  { prefix: "a", region: "afr", loc: { lat: -26.2, lon: 28.05 } },
  { prefix: "b", region: "me", loc: { lat: 25.2, lon: 55.27 } },
  { prefix: "c", region: "sam", loc: { lat: -23.55, lon: -46.63 } },
];
const names = (prefix: string) =>
  Array.from({ length: 32 }, (_, i) => `smc-${prefix}${String(i).padStart(2, "0")}`);

async function getJson<T>(path: string): Promise<T> {
  return (await (await SELF.fetch(`${ORIGIN}${path}`)).json()) as T;
}

/** The three regions as the status API's snapshot shows them: each with a tab. */
async function regionsWithTabs(): Promise<number> {
  const regions = (await getJson<{ data: RegionView[] }>("/v1/status/regions")).data;
  return PLACES.filter((p) => regions.some((r) => r.region === p.region && r.tabs > 0)).length;
}

describe("GET /v1/status models count", () => {
  it("is bounded like the model listing, not by what tabs invent", async () => {
    for (const { prefix, loc } of PLACES) await tabs.tab(names(prefix), { loc });
    // The status API reads a snapshot in which every region reported its tab's names.
    await expect.poll(regionsWithTabs, { timeout: 5000 }).toBe(PLACES.length);
    const network = await getJson<NetworkView>("/v1/status");
    const listed = (await getJson<{ data: ModelView[] }>("/v1/status/models")).data;
    expect(listed.length).toBeLessThanOrEqual(MAX_LISTED_OTHER_MODELS + 5);
    // The headline must not count more models than the public listing shows.
    expect(network.models).toBeLessThanOrEqual(listed.length);
  });
});
