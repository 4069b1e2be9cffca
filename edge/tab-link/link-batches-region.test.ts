import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { ProtocolTab } from "../../test/support/protocol-tab.js";
import { appEnv, chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "../region/region-stub.js";
import type { RegionDurableObject } from "../region/region-do.js";
import { BATCH_ACK, BATCH_PREFIX, encodeBatch } from "./link-envelope.js";

/**
 * The Region object reads its tab links' batches (link-envelope.ts) frame by frame and
 * acknowledges each, and a tab gains nothing by sending something shaped like a batch. Through the
 * real coordinator: scripted tabs connect through the Worker's tab link as browsers do.
 */

const tabs = useTabs();

/** Count the Region's WebSocket message events (each one is a runtime event the batching saves). */
async function countRegionMessages(): Promise<{ count: () => number; stop: () => Promise<void> }> {
  let n = 0;
  const stub = regionStub(appEnv, "wnam");
  await runInDurableObject(stub, (region: RegionDurableObject) => {
    const own = region.webSocketMessage.bind(region);
    region.webSocketMessage = (ws, raw) => {
      n++;
      return own(ws, raw);
    };
  });
  return {
    count: () => n,
    stop: () =>
      runInDurableObject(stub, (region: RegionDurableObject) => {
        delete (region as { webSocketMessage?: unknown }).webSocketMessage;
      }),
  };
}

describe("a tab streaming faster than the Region handles single frames", () => {
  it("reaches the Region in fewer messages than frames, every delta in order, none lost when the tab closes right after done", async () => {
    const tab = await tabs.tab(["lb-fast"]);
    const resP = chat("lb-fast", { stream: true });
    const job = await tab.nextJob();
    const pieces = Array.from({ length: 300 }, (_, i) => `w${i} `);
    const messages = await countRegionMessages();
    try {
      // accept, 300 deltas and done, sent without waiting for anything; then the tab goes away.
      tab.serve(job, pieces);
      tab.close(1000, "tab done");
      expect(await streamText(await resP)).toEqual({ text: pieces.join(""), done: true });
      // 302 frames plus the close; one message event per frame before the tab link batched them.
      expect(messages.count()).toBeLessThan(150);
    } finally {
      await messages.stop();
    }
  });
});

describe("the Region reading a tab link's batches", () => {
  it("handles each frame of a batch as if it came alone and acknowledges the batch", async () => {
    // Straight to the Region object, as a tab link connects, sending every frame in a batch.
    const res = await regionStub(appEnv, "wnam").fetch(
      new Request("http://region/connect", {
        headers: { upgrade: "websocket", "x-tabgrid-node-ip": "192.0.2.77" },
      }),
    );
    const ws = res.webSocket!;
    ws.accept();
    let acks = 0;
    const tab = new ProtocolTab({
      send: (text) => ws.send(encodeBatch([text])),
      close: (code, reason) => ws.close(code, reason),
      get readyState() {
        return ws.readyState;
      },
    });
    ws.addEventListener("message", (e) => {
      if (e.data === BATCH_ACK) acks++;
      else tab.receive(e.data as string);
    });
    ws.addEventListener("close", (e) => tab.socketClosed(e.code, e.reason));
    const welcome = await tab.handshake({ models: ["lb-direct"] });
    expect(welcome.nodeId).toMatch(/^a_/);
    // The welcome is sent while the batch is handled, its acknowledgement after.
    await expect.poll(() => acks).toBe(1);
    expect(tab.isClosed).toBe(false);
    // Two status frames in one batch: one acknowledgement after both.
    const status = JSON.stringify({ type: "status", state: "idle", models: ["lb-direct"] });
    ws.send(encodeBatch([status, status]));
    await expect.poll(() => acks).toBe(2);
    const listed = await regionStub(appEnv, "wnam").listTabs();
    expect(listed.filter((t) => t.models.includes("lb-direct"))).toHaveLength(1);
    tab.close(1000, "done");
  });

  it("refuses a tab's frame shaped like a batch as a bad frame", async () => {
    const tab = await tabs.tab(["lb-forger"]);
    const status = JSON.stringify({ type: "status", state: "idle", models: ["lb-forger"] });
    tab.send(`${BATCH_PREFIX}${status.length}:${status}`);
    expect((await tab.closed).code).toBe(CloseCode.BadFrame);
  });
});
