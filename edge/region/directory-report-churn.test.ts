import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import { directoryStub } from "../directory/directory-client.js";
import type { DirectoryDurableObject } from "../directory/directory-do.js";
import { MIN_REPORT_GAP_MS, REPORT_BURST } from "./region-report.js";

/**
 * A Region object writes the one global Directory when what it reports changes — a tab's model
 * list, its last idle tab for a model — and a tab decides how often that is. One tab's `status`
 * frames must not make its Region write the Directory once per frame: past a burst, immediate
 * reports are at most one per MIN_REPORT_GAP_MS per Region object (region-report.ts), and the status budget
 * applies to every frame that parses as `status` (tab-channel.ts), however its keys are ordered.
 */
const tabs = useTabs();

/** Count the Directory's writes of a region summary (its `report`: an INSERT into `regions`). */
async function countReports(): Promise<() => number> {
  let reports = 0;
  await runInDurableObject(directoryStub(appEnv), (o: DirectoryDurableObject) => {
    const holder = o as unknown as { sql: SqlStorage };
    const real = holder.sql;
    holder.sql = new Proxy(real, {
      get(target, prop) {
        if (prop !== "exec") return Reflect.get(target, prop) as unknown;
        return (query: string, ...bindings: SqlStorageValue[]) => {
          if (query.includes("INTO regions")) reports += 1;
          return target.exec(query, ...bindings);
        };
      },
    });
  });
  return () => reports;
}

/** Tabs serving `model` in region wnam (where tabs without a location go), as the Directory has it. */
async function reportedTabs(model: string): Promise<number> {
  const snapshot = await directoryStub(appEnv).snapshot();
  return snapshot["wnam"]?.models[model]?.nodes ?? 0;
}

/** Until the Directory shows the tab's last state: gone if it was closed, else serving `last`. */
async function settled(tab: ScriptedTab, models: string[], last: string): Promise<boolean> {
  if (!tab.isClosed) return (await reportedTabs(last)) > 0;
  for (const m of models) if ((await reportedTabs(m)) > 0) return false;
  return true;
}

describe("status frames and the global Directory", () => {
  it(
    "a tab's model churn with reordered keys does not write the Directory once per frame",
    { timeout: 60_000 },
    async () => {
      const FRAMES = 150;
      // Its own address: a tab closed for flooding keeps its address out for a minute.
      const tab = await ScriptedTab.open("", { "cf-connecting-ip": "198.51.100.21" });
      await tab.handshake({ models: ["churn-0"] });
      tabs.list.push(tab);
      const reports = await countReports();
      for (let n = 0; n < FRAMES; n++) {
        // Keys reordered: the frame does not start with '{"type":"status"'.
        tab.send({ state: "idle", models: [`churn-${n % 2}`], type: "status" } as never);
      }
      // A last status as a tab writes it, unless the tab was closed by then.
      tab.send({ type: "status", state: "idle", models: ["churn-end"] });
      const models = ["churn-0", "churn-1", "churn-end"];
      await expect.poll(() => settled(tab, models, "churn-end"), { timeout: 10_000 }).toBe(true);
      console.log(
        `${FRAMES} status frames: closed=${tab.isClosed}, Directory reports=${reports()}`,
      );
      expect(reports()).toBeLessThanOrEqual(35);
      expect(tab.isClosed ? (await tab.closed).code : null).toBe(CloseCode.RateLimited);
    },
  );

  it("a tab's model churn within its status budget writes the Directory at most once per gap", async () => {
    const FRAMES = 25; // within the status burst (30): the tab stays connected
    const tab = await tabs.tab(["steady-0"]);
    const reports = await countReports();
    const start = Date.now();
    for (let n = 0; n < FRAMES; n++)
      tab.send({ type: "status", state: "idle", models: [`steady-${n % 2}`] });
    tab.send({ type: "status", state: "idle", models: ["steady-end"] });
    await expect.poll(() => reportedTabs("steady-end"), { timeout: 10_000 }).toBe(1);
    const elapsed = Date.now() - start;
    console.log(`${FRAMES} status frames in ${elapsed} ms: Directory reports=${reports()}`);
    expect(tab.isClosed).toBe(false);
    // The burst at once, then one per gap at most (and one more timed before the first).
    expect(reports()).toBeLessThanOrEqual(
      REPORT_BURST + Math.ceil(elapsed / MIN_REPORT_GAP_MS) + 1,
    );
  });
});
