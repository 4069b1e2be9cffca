import { PING_FRAME } from "../../shared/protocol/node-messages.js";
import { encodeBatch, MAX_BATCH_FRAMES, MAX_BATCH_UNITS } from "./link-envelope.js";

/**
 * A tab link's frames to its Region object, batched by the Region's own pace (self-clocking): a
 * frame goes at once when the Region has acknowledged every batch sent so far; while one is not yet
 * acknowledged, the tab's further frames collect here, and the acknowledgement sends all of them as
 * the next batch (link-envelope.ts). No timer: on a quiet Region every frame leaves the moment it
 * arrives (one batch of one frame); on a busy one a frame waits at most until the Region has handled
 * the batch before it, and batches grow by themselves with the load.
 *
 * Only frames already within the tab's budget and byte limit reach `push` (socket-bridge.ts): the
 * pending list is bounded by the budget's burst. Order is kept: every frame goes in arrival order on
 * the one socket, except pings, which go alone and at once (the Region's runtime answers a ping
 * only when a message is exactly PING_FRAME, without waking the object; a ping carries no state, so
 * overtaking pending frames changes nothing). Binary frames (tabs send none) go bare, in order,
 * unbatched, and are not acknowledged.
 */
export class FrameBatcher {
  private pending: (string | ArrayBuffer)[] = [];
  /** Batches sent and not yet acknowledged. */
  private unacked = 0;

  constructor(private readonly send: (message: string | ArrayBuffer) => void) {}

  /** Frames waiting for the Region's acknowledgement. */
  get waiting(): number {
    return this.pending.length;
  }

  push(frame: string | ArrayBuffer): void {
    if (frame === PING_FRAME) return this.send(frame);
    this.pending.push(frame);
    if (this.unacked === 0) this.flush(false);
  }

  /** The Region handled a batch: send what collected meanwhile. */
  acked(): void {
    if (this.unacked > 0) this.unacked--;
    if (this.unacked === 0) this.flush(false);
  }

  /** Send everything pending now, acknowledged or not (before the tab's close goes on). */
  drain(): void {
    this.flush(true);
  }

  /** Drop what is pending (the tab was refused): none of it reaches the Region. */
  discard(): void {
    this.pending = [];
  }

  /** Send pending frames: one batch (and binary frames before it), or all of them when `all`. */
  private flush(all: boolean): void {
    while (this.pending.length > 0 && (all || this.unacked === 0)) {
      const first = this.pending[0]!;
      if (typeof first !== "string") {
        this.pending.shift();
        this.send(first);
        continue;
      }
      const batch: string[] = [];
      let units = 0;
      let n = 0;
      while (n < this.pending.length && batch.length < MAX_BATCH_FRAMES) {
        const frame = this.pending[n]!;
        if (typeof frame !== "string") break;
        if (batch.length > 0 && units + frame.length > MAX_BATCH_UNITS) break;
        batch.push(frame);
        units += frame.length;
        n++;
      }
      this.pending = n === this.pending.length ? [] : this.pending.slice(n);
      this.unacked++;
      this.send(encodeBatch(batch));
    }
  }
}
