import { CloseCode } from "../../shared/protocol/close-codes.js";
import { MAX_FRAME_BYTES } from "../../shared/protocol/node-messages.js";
import { closeSocket, frameTooLarge } from "../durable/socket.js";
import { log } from "../http/log.js";
import type { SocketBudget } from "../region/frame-budget.js";
import { FrameBatcher } from "./frame-batcher.js";
import { BATCH_ACK } from "./link-envelope.js";

/**
 * Forward frames and closes between a tab's socket and its Region object's, keeping the tab within
 * its budget. Runs in the Worker that accepted the upgrade (link-route.ts). A tab over its budget or
 * byte limit is closed with a typed close, the Region is told with the same code (it counts that as
 * the tab's fault), and every frame still in flight from that tab — megabytes of them in TCP
 * buffers, each one an event — finds no listener and is dropped here unread: none of them queues in
 * the Region ahead of its own work (docs/limits.md, "Abuse benchmark").
 *
 * The tab's budgeted frames go to the Region in batches paced by the Region's acknowledgements
 * (frame-batcher.ts, link-envelope.ts): one message event in the Region per batch instead of one
 * per frame. The acknowledgements end here; the tab never sees them. Before the tab's close goes on
 * to the Region, the frames still waiting go first, so the Region has all of them before the close.
 *
 * Transparent otherwise: the Region's frames (challenge, welcome, job.assign, pong…) and closes go
 * to the tab unchanged, and the tab's closes to the Region, so protocol, reconnect and resend
 * behave as if the tab's socket ended in the Region. `onRefused` hears the close code of a refusal,
 * this link's or the Region's 4009 (link-route.ts keeps a flooder's address from reconnecting for
 * a while); the frames of a refused tab still waiting for an acknowledgement are dropped with it
 * (the Region counts the refusal as the tab's fault and moves its job, as it does when the tab's
 * frames stop).
 */
export function bridge(
  tab: WebSocket,
  region: WebSocket,
  budget: SocketBudget,
  onRefused?: (code: number) => void,
): void {
  let refused = false;
  /** Stop taking the tab's frames: a refusal, here or by the Region (its status budget). */
  const stop = (code: number) => {
    if (refused) return;
    refused = true;
    // Frames still arriving from a refused tab find no listener: they go nowhere, run no code here.
    tab.removeEventListener("message", onTabFrame);
    batcher.discard();
    onRefused?.(code);
  };
  const refuse = (code: number, reason: string) => {
    stop(code);
    log("warn", "tab link refused frames", { closeCode: code, reason });
    closeSocket(tab, code, reason);
    closeSocket(region, code, reason);
  };
  tab.accept();
  region.accept();
  const batcher = new FrameBatcher((message) => {
    try {
      region.send(message);
    } catch {
      // The Region's side is closing; its close event closes the tab.
    }
  });
  const onTabFrame = (e: MessageEvent) => {
    const raw = e.data as string | ArrayBuffer;
    if (!budget.take()) return refuse(CloseCode.RateLimited, "frame rate over the socket's budget");
    if (frameTooLarge(raw, MAX_FRAME_BYTES)) {
      return refuse(CloseCode.FrameTooLarge, `frame too large (limit ${MAX_FRAME_BYTES} bytes)`);
    }
    batcher.push(raw);
  };
  tab.addEventListener("message", onTabFrame);
  region.addEventListener("message", (e: MessageEvent) => {
    if (e.data === BATCH_ACK) return batcher.acked();
    try {
      tab.send(e.data as string | ArrayBuffer);
    } catch {
      // The tab's side is closing; its close event closes the Region's.
    }
  });
  tab.addEventListener("close", (e: CloseEvent) => {
    batcher.drain();
    closeSocket(region, e.code, e.reason);
  });
  region.addEventListener("close", (e: CloseEvent) => {
    // The Region closed the tab for flooding (status frames over their budget, counted once
    // parsed: frame-budget.ts `statusBucket`): refused here too, so its address waits out the
    // penalty before this Worker asks the Region again (link-route.ts).
    if (e.code === CloseCode.RateLimited) stop(e.code);
    closeSocket(tab, e.code, e.reason);
  });
  tab.addEventListener("error", () => {
    batcher.drain();
    closeSocket(region, 1011, "tab socket failed");
  });
  region.addEventListener("error", () => closeSocket(tab, 1011, "coordinator socket failed"));
}
