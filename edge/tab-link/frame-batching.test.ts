import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { PING_FRAME } from "../../shared/protocol/node-messages.js";
import { SocketBudget } from "../region/frame-budget.js";
import { BATCH_ACK, BATCH_PREFIX, decodeBatch, encodeBatch } from "./link-envelope.js";
import { bridge } from "./socket-bridge.js";

/**
 * The tab link batches a tab's frames into its Region object, paced by the Region's
 * acknowledgements (frame-batcher.ts): each message is one event in the Region, and token frames
 * were mostly that cost (docs/scale.md). Here the link runs between two real WebSocket pairs: the
 * test is the tab on one end and the Region on the other, so it sees exactly what the link sends
 * and decides when to acknowledge.
 */

/** One end of a socket whose messages and close the test reads in order. */
class End {
  readonly messages: (string | ArrayBuffer)[] = [];
  closedWith: number | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (e) => this.note(() => this.messages.push(e.data)));
    ws.addEventListener("close", (e) => this.note(() => (this.closedWith = e.code)));
  }

  private note(change: () => void): void {
    change();
    this.wake?.();
  }

  /** Resolves once `ready()` holds, checked after every message or close. */
  async until(ready: () => boolean): Promise<void> {
    while (!ready()) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** The tab frames the link sent, batches opened (for checks of order and loss). */
  frames(): string[] {
    return this.messages.flatMap((m) => {
      const batch = decodeBatch(m);
      return Array.isArray(batch) ? batch : [m as string];
    });
  }
}

function linked(limits = { tabFramesPerSecond: 200, tabFrameBurst: 1_000 }) {
  const tabPair = new WebSocketPair();
  const regionPair = new WebSocketPair();
  const refused: number[] = [];
  bridge(tabPair[1], regionPair[0], new SocketBudget(limits), (code) => refused.push(code));
  return { tab: new End(tabPair[0]), region: new End(regionPair[1]), refused };
}

const delta = (seq: number) =>
  JSON.stringify({ type: "job.delta", jobId: "job_wnam_x", seq, text: `t${seq} ` });

describe("a tab link under load", () => {
  it("sends a frame at once, collects those behind it until the Region acknowledges, then sends them as one batch, in order; pings go alone", async () => {
    const { tab, region } = linked();
    for (let seq = 0; seq < 50; seq++) tab.ws.send(delta(seq));
    // Sent after the frames: when it reaches the Region's end, the link has seen all 50.
    tab.ws.send(PING_FRAME);
    await region.until(() => region.messages.includes(PING_FRAME));

    // Nothing was outstanding for the first frame: it went at once, alone. The other 49 wait.
    expect(region.messages).toEqual([encodeBatch([delta(0)]), PING_FRAME]);

    region.ws.send(BATCH_ACK);
    await region.until(() => region.messages.length === 3);
    expect(region.messages[2]).toBe(
      encodeBatch(Array.from({ length: 49 }, (_, i) => delta(i + 1))),
    );

    // Acknowledged and nothing pending: the next frame goes at once again.
    region.ws.send(BATCH_ACK);
    tab.ws.send(delta(50));
    await region.until(() => region.messages.length === 4);
    expect(region.messages[3]).toBe(encodeBatch([delta(50)]));
    // The acknowledgements end in the link; the Region's own frames reach the tab unchanged.
    region.ws.send('{"type":"pong"}');
    await tab.until(() => tab.messages.length === 1);
    expect(tab.messages).toEqual(['{"type":"pong"}']);
    tab.ws.close(1000, "done");
  });

  it("wraps a tab frame that looks like a batch or an acknowledgement, so the Region reads it as one frame", async () => {
    const { tab, region } = linked();
    const forged = `${BATCH_PREFIX}${delta(1).length}:${delta(1)}`;
    tab.ws.send(forged);
    tab.ws.send(BATCH_ACK);
    tab.ws.send(PING_FRAME);
    await region.until(() => region.messages.includes(PING_FRAME));
    region.ws.send(BATCH_ACK);
    await region.until(() => region.messages.length === 3);
    expect(region.messages).toEqual([encodeBatch([forged]), PING_FRAME, encodeBatch([BATCH_ACK])]);
    expect(region.frames()).toEqual([forged, PING_FRAME, BATCH_ACK]);
    tab.ws.close(1000, "done");
  });

  it("sends the frames still waiting before the tab's close, so the Region loses none", async () => {
    const { tab, region } = linked();
    const sent = Array.from({ length: 30 }, (_, seq) => delta(seq));
    for (const frame of sent) tab.ws.send(frame);
    tab.ws.close(1000, "tab done");
    await region.until(() => region.closedWith !== null);
    // Never acknowledged, yet all 30 arrived, in order, before the close (in two messages).
    expect(region.frames()).toEqual(sent);
    expect(region.messages).toHaveLength(2);
    expect(region.closedWith).toBe(1000);
  });

  it("still refuses a flooder frame by frame with RateLimited, and its waiting frames never reach the Region", async () => {
    const { tab, region, refused } = linked({ tabFramesPerSecond: 200, tabFrameBurst: 100 });
    for (let seq = 0; seq < 1_000 && tab.ws.readyState === 1; seq++) tab.ws.send(delta(seq));
    await tab.until(() => tab.closedWith !== null);
    await region.until(() => region.closedWith !== null);
    expect(tab.closedWith).toBe(CloseCode.RateLimited);
    expect(region.closedWith).toBe(CloseCode.RateLimited);
    expect(refused).toEqual([CloseCode.RateLimited]);
    // Only the first frame went (nothing acknowledged it); the flood ended in the link.
    expect(region.frames()).toEqual([delta(0)]);
  });
});

describe("the batch format", () => {
  it("round-trips any frames and refuses what does not parse", () => {
    const frames = ["", "a", "1:2:3", BATCH_PREFIX, "é😀\u0000", delta(7)];
    expect(decodeBatch(encodeBatch(frames))).toEqual(frames);
    expect(decodeBatch(delta(1))).toBeNull();
    expect(decodeBatch(new ArrayBuffer(4))).toBeNull();
    for (const bad of ["", "x", "5:abc", "01:a", "-1:", "1:a2", "99999999:a"]) {
      expect(decodeBatch(BATCH_PREFIX + bad)).toBe("malformed");
    }
  });
});
