import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_MODELS } from "../../shared/models/catalog.js";
import { ledgerCallsDone } from "../../test/workerd/credit-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { forgetHostedCatalog } from "../model-catalog.js";
import type { RegionParts } from "../region/region-parts.js";
import { regionStub } from "../region/region-stub.js";
import { CreditedModels } from "./credited-models.js";
import { ledgerStub } from "./ledger-client.js";

/**
 * Only models of the catalog this coordinator serves earn credit (credited-models.ts), as in
 * production (CREDIT_MODELS=catalog, the default). The other workerd tests run with
 * CREDIT_MODELS=any, because their scripted tabs serve made-up names; each test here gives the
 * Region object (wnam) the production rule before its tab joins.
 */

const tabs = useTabs();

function inRegion(f: (parts: RegionParts) => unknown): Promise<unknown> {
  return runInDurableObject(regionStub(appEnv, "wnam"), (obj) =>
    f((obj as unknown as { parts: RegionParts }).parts),
  );
}

async function catalogOnly(): Promise<void> {
  await inRegion((parts) => {
    if (parts.credits) parts.credits.models = new CreditedModels(appEnv, "catalog");
  });
}

/** One keyless request of `maxTokens` with a latency budget, answered with `text` by `tab`. */
async function serveOwn(tab: ScriptedTab, model: string, text: string, maxTokens: number) {
  const res = chat(model, { max_tokens: maxTokens, tabgrid: { latency_budget_ms: 600_000 } });
  tab.serve(await tab.nextJob(), [text], { completion_tokens: maxTokens });
  expect((await res).status).toBe(200);
  const credit = (await tab.next("job.credit")).credit;
  await ledgerCallsDone();
  return { credit, earned: (await ledgerStub(appEnv).balance(tab.nodeId)).earned };
}

describe("credit only for catalog models", () => {
  it("a tab serving a model name of its own earns nothing for its own client's request", async () => {
    await catalogOnly();
    const tab = await tabs.tab(["my-own-private-model"], { keys: await newKeyPair() });
    // The same person's client: keyless, the largest max_tokens, a (free) latency budget; the tab
    // writes 4,096 bytes of junk. Nobody else serves the name, so no audit can ever check it.
    const got = await serveOwn(tab, "my-own-private-model", "x".repeat(4096), 4096);
    expect(got).toEqual({ credit: 0, earned: 0 });
  });

  it("WebLLM's models, the operator's EXTRA_MODELS and hosted models earn", async () => {
    await appEnv.WEIGHTS!.put(
      "catalog.json",
      JSON.stringify([{ model_id: "cm-hosted-model", library: "cm-hosted-model.wasm" }]),
    );
    forgetHostedCatalog();
    await catalogOnly();
    const webllm = DEFAULT_MODELS.find((m) => m.model_type !== 1)!.model_id;
    // EXTRA_MODELS of the tests (vitest.config.ts).
    const operator = "Operator-Test-Model-q4f32_1-MLC";
    const tab = await tabs.tab([webllm, operator, "cm-hosted-model"], { keys: await newKeyPair() });
    // The tab's joining started a read of the hosted models' ids: wait for it.
    await inRegion((parts) => parts.credits?.models.refresh());
    // The batch weight (1): a budget the client did not pay for earns no more.
    expect(await serveOwn(tab, webllm, "abc", 3)).toEqual({ credit: 3, earned: 3 });
    expect(await serveOwn(tab, operator, "abcd", 4)).toEqual({ credit: 4, earned: 7 });
    expect(await serveOwn(tab, "cm-hosted-model", "ab", 2)).toEqual({ credit: 2, earned: 9 });
  });
});
