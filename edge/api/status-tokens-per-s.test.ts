import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ModelView } from "../../shared/status/status-views.js";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * "Trust no tab": the public per-model decode speed (GET /v1/status/models tokens_per_s, the
 * status page's models table) is tokens over the time from the first delivered text to job.done.
 * A tab that sends its whole answer in one frame and says done at once made that time ~1 ms, and
 * the network showed 500,000 tokens/s for the model; now a job counts at most at the plausible
 * ceiling (edge/region/region-stats.ts, shared/gpu/plausible.ts `plausibleDecodeMaxTps`).
 */
const tabs = useTabs();
const ORIGIN = "http://tabgrid.test";
const MODEL = "tps-liar-model";

async function modelView(): Promise<ModelView | undefined> {
  const res = await SELF.fetch(`${ORIGIN}/v1/status/models`);
  return ((await res.json()) as { data: ModelView[] }).data.find((m) => m.id === MODEL);
}

describe("GET /v1/status/models tokens_per_s", () => {
  it("stays physically plausible when a tab dumps its answer and says done at once", async () => {
    const liar = await tabs.tab([MODEL]);
    const text = "a".repeat(2000);
    const resP = chat(MODEL, { stream: true, max_tokens: 4000 });
    const job = await liar.nextJob();
    liar.accept(job);
    liar.delta(job, 0, text);
    liar.done(job, "stop", { completion_tokens: 2000 });
    expect((await streamText(await resP)).text).toBe(text);

    // Regions report to the Directory at most once a second.
    await expect
      .poll(async () => (await modelView())?.tokens_per_s ?? null, { timeout: 5000 })
      .not.toBeNull();
    const view = await modelView();
    console.log("public tokens_per_s:", view?.tokens_per_s);
    // TPS_BOUNDS' last finite bound is 500 tokens/s; no WebGPU tab decodes 10,000 tokens/s.
    expect(view?.tokens_per_s ?? 0).toBeLessThanOrEqual(10_000);
  });
});
