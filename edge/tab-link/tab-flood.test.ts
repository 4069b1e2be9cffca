import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "../region/region-stub.js";

/**
 * A registered tab that floods frames must not jam the Region object (issue 11, docs/limits.md
 * "Abuse benchmark"). The flooder is closed after its burst, but the frames it already sent are
 * still delivered, each as its own event: they used to reach the Region and queue there ahead of a
 * legitimate client's request and the other tabs' frames. Its frames now end at its tab link, in
 * the Worker that accepted its upgrade (edge/tab-link), which closes it with RateLimited and drops
 * the rest there.
 */

const tabs = useTabs();

/** Frames the flooder sends without waiting: 20× its budget's burst (1000). */
const FLOOD_FRAMES = 20_000;
/** The honest tab's answer: one delta frame per piece, each of which must reach the Region. */
const PIECES = Array.from({ length: 20 }, (_, i) => `piece ${i} `);
/**
 * A quiet request here took 0.1–0.45 s on the shared machine; right after the flooder's close it
 * took 4.9, 6.4 and 14.7 s when the Region received the flood, 0.3–1.1 s with the tab link as a
 * Durable Object, 0.31–0.70 s with the link in the Worker.
 */
const boundMs = (quietMs: number) => Math.max(2_000, 4 * quietMs);

async function honestRequest(honest: Awaited<ReturnType<typeof tabs.tab>>) {
  const started = Date.now();
  const resP = chat("fl-honest", { stream: true });
  honest.serve(await honest.nextJob(), PIECES);
  const answer = await streamText(await resP);
  return { answer, ms: Date.now() - started };
}

describe("a tab flooding frames", () => {
  it(
    "is closed with RateLimited, and another tab's request completes within the bound right after",
    { timeout: 90_000 },
    async () => {
      const honest = await tabs.tab(["fl-honest"]);
      const quiet = await honestRequest(honest);

      const flooder = await tabs.tab(["fl-flood"]);
      const frame = JSON.stringify({ type: "status", state: "idle", models: ["fl-flood"] });
      for (let n = 0; n < FLOOD_FRAMES; n++) flooder.send(frame);
      expect((await flooder.closed).code).toBe(CloseCode.RateLimited);

      // Most of the flood is still in flight when the close arrives: the request starts now.
      const during = await honestRequest(honest);
      console.log(`tab flood: quiet request ${quiet.ms} ms, right after the close ${during.ms} ms`);
      expect(during.answer).toEqual({ text: PIECES.join(""), done: true });
      expect(during.ms).toBeLessThan(boundMs(quiet.ms));
      // The honest tab kept its socket and its place in the registry (not swept as silent).
      expect(honest.isClosed).toBe(false);
      const listed = await regionStub(appEnv, "wnam").listTabs();
      expect(listed.filter((t) => t.models.includes("fl-honest"))).toHaveLength(1);
      expect(listed.filter((t) => t.models.includes("fl-flood"))).toHaveLength(0);
    },
  );
});
