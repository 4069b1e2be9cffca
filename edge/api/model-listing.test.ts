import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ModelView } from "../../shared/status/status-views.js";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import app from "../index.js";
import { MAX_LISTED_OTHER_MODELS } from "../model-catalog.js";

/**
 * A tab may announce any 32 model names. The listings — GET /v1/models, GET /v1/status/models and
 * /metrics' per-model labels — show every catalog model and at most MAX_LISTED_OTHER_MODELS other
 * names, those served by the most tabs first (model-catalog.ts `listedModels`).
 */

const tabs = useTabs();
const ORIGIN = "http://tabgrid.test";
const TOKEN = "metrics-token-for-tests-0123";
/** EXTRA_MODELS of the tests (vitest.config.ts): a catalog model. */
const OPERATOR = "Operator-Test-Model-q4f32_1-MLC";

const names = (prefix: string) =>
  Array.from({ length: 32 }, (_, i) => `ml-${prefix}${String(i).padStart(2, "0")}`);

async function listings(): Promise<{ models: string[]; status: string[]; metrics: string[] }> {
  const models = (await (await SELF.fetch(`${ORIGIN}/v1/models`)).json()) as {
    data: Array<{ id: string }>;
  };
  const status = (await (await SELF.fetch(`${ORIGIN}/v1/status/models`)).json()) as {
    data: ModelView[];
  };
  const metrics = await app.request(
    "/metrics",
    { headers: { authorization: `Bearer ${TOKEN}` } },
    { ...appEnv, METRICS_TOKEN: TOKEN },
  );
  const labels = [...(await metrics.text()).matchAll(/^tabgrid_model_tabs\{(.*)\} /gm)]
    .filter((m) => m[1]!.includes('state="all"'))
    .map((m) => /model="([^"]*)"/.exec(m[1]!)![1]!);
  return {
    models: models.data.map((m) => m.id),
    status: status.data.map((m) => m.id),
    metrics: labels,
  };
}

/** Poll until every listing shows `model` (regions report to the Directory about once a second). */
async function listingsWith(model: string) {
  const end = Date.now() + 5000;
  for (;;) {
    const l = await listings();
    if ([l.models, l.status, l.metrics].every((ids) => ids.includes(model)) || Date.now() > end)
      return l;
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe("model listings", () => {
  it("list every catalog model and at most MAX_LISTED_OTHER_MODELS made-up names", async () => {
    expect(MAX_LISTED_OTHER_MODELS).toBe(64);
    // 96 made-up names: the p-names on two tabs each, the q- and r-names on one.
    for (const models of [names("p"), names("p"), names("q"), names("r")]) await tabs.tab(models);
    await tabs.tab([OPERATOR]);
    const l = await listingsWith(OPERATOR);
    const expected = [OPERATOR, ...names("p"), ...names("q")].sort();
    for (const ids of [l.models, l.status, l.metrics]) {
      // Other tests' tabs are gone; only this test's names are listed.
      expect([...ids].sort()).toEqual(expected);
    }
  });
});
