import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * A request that takes a shard's last idle tab makes the shard tell the Directory at once
 * (region-report.ts). That report is a round trip to another object: the client's response — its
 * headers, then its first token — must not wait for it (docs/performance.md, "Time to first
 * token"). Here the Directory never answers the Region's reports while the request runs.
 */

const { tab } = useTabs();
const MODEL = "reply-before-report-model";

/** What the test keeps in the Region object: the reports it held, and the real sender. */
interface Held {
  heldReports: number;
  realSend: (summary: unknown) => Promise<void>;
}

function reportOf(parts: RegionParts): { send: (summary: unknown) => Promise<void> } {
  return parts.report as unknown as { send: (summary: unknown) => Promise<void> };
}

it("streams the answer while the shard's report to the Directory is still unanswered", async () => {
  const t = await tab([MODEL]);
  const stub = regionStub(appEnv, "wnam");
  // From now on the Directory does not answer this Region object's reports.
  await runInDurableObject(stub, (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    const held = obj as unknown as Held;
    const report = reportOf(parts);
    held.heldReports = 0;
    held.realSend = report.send;
    report.send = () => {
      held.heldReports += 1;
      return new Promise<void>(() => undefined);
    };
  });
  try {
    const res = await chat(MODEL, { stream: true });
    expect(res.status).toBe(200);
    const job = await t.nextJob();
    t.serve(job, ["Hello", " world"]);
    expect(await streamText(res)).toEqual({ text: "Hello world", done: true });
    // The request did take the shard's last idle tab for the model: its report was sent and held.
    const heldReports = await runInDurableObject(
      stub,
      (obj) => (obj as unknown as Held).heldReports,
    );
    expect(heldReports).toBeGreaterThanOrEqual(1);
  } finally {
    await runInDurableObject(stub, (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      reportOf(parts).send = (obj as unknown as Held).realSend;
    });
  }
});
