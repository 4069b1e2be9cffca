import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import type { RegionParts } from "./region-parts.js";
import type { RegionSummary } from "./region-views.js";
import { regionStub } from "./region-stub.js";

/**
 * Every tab's status and every job's assign and end ask the region report whether the flip
 * changed which models have an idle tab (region-report.ts). That question must cost about one
 * trust read per model, not a whole summary (a trust read per tab, plus spillover offers), and
 * still be answered right: losing the last idle tab for a model reports at once.
 */
const { tab } = useTabs();
const MODEL = "report-flip-cost-model";

interface Patched {
  sent: RegionSummary[];
  trustReads: number;
}

it("a flip that leaves a model's idle set unchanged reads one tab's trust; the last idle tab's flip reports at once", async () => {
  for (let i = 0; i < 6; i++) await tab([MODEL]);
  const stub = regionStub(appEnv, "wnam");
  const out = await runInDurableObject(stub, async (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    const report = parts.report as unknown as { send: (s: RegionSummary) => Promise<void> };
    const trust = parts.trust as unknown as { state: (id: string) => string };
    const realSend = report.send;
    const realState = trust.state;
    const p: Patched = { sent: [], trustReads: 0 };
    report.send = async (s) => void p.sent.push(s);
    trust.state = (id) => (p.trustReads++, realState.call(parts.trust, id));
    try {
      await parts.report.soon(true); // the Directory knows the idle set
      const mine = [...parts.tabs.all()].filter((t) => t.models.includes(MODEL));
      const before = { sent: p.sent.length, reads: p.trustReads };
      // Five of the six tabs turn busy, one at a time: a model still has an idle tab.
      const costs: number[] = [];
      for (const t of mine.slice(0, -1)) {
        parts.tabs.update(t, { state: "busy" });
        const reads = p.trustReads;
        await parts.report.soon(false);
        costs.push(p.trustReads - reads);
      }
      const sentWhileIdleLeft = p.sent.length - before.sent;
      // The last idle tab turns busy: the shard says so at once.
      const last = mine[mine.length - 1];
      if (last) parts.tabs.update(last, { state: "busy" });
      await parts.report.soon(false);
      const lastReport = p.sent[p.sent.length - 1];
      for (const t of mine) parts.tabs.update(t, { state: "idle" });
      return {
        tabs: mine.length,
        costs,
        sentWhileIdleLeft,
        reportedAtOnce: p.sent.length - before.sent - sentWhileIdleLeft,
        idleInLast: lastReport?.models[MODEL]?.idle,
      };
    } finally {
      report.send = realSend;
      trust.state = realState;
    }
  });
  expect(out.tabs).toBe(6);
  expect(out.sentWhileIdleLeft).toBe(0);
  expect(out.reportedAtOnce).toBe(1);
  expect(out.idleInLast).toBe(0);
  // One trust read per flip (the first idle tab found for the model), whatever the tab count.
  for (const c of out.costs) expect(c).toBeLessThanOrEqual(1);
});
