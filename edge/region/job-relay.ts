import { encodeEvent, type JobEvent } from "./job-events.js";

interface Subscriber {
  id: string;
  controller: ReadableStreamDefaultController<Uint8Array>;
  /**
   * Characters of live text this reader already has: it resumed past the text the object holds
   * (the object lost an unwritten batch that the tab is resending), so that much is skipped.
   */
  skip: number;
  /**
   * Delta text that arrived while this reader's queue was full (it has not read the last chunk
   * yet): sent as ONE delta event at its next read. A reader that keeps up gets each delta as it
   * comes; one that falls behind gets them coalesced, so the work per chunk downstream (the RPC
   * stream, the Worker's NDJSON parse and SSE encoding, the HTTP write) no longer grows with the
   * frame rate. No timer is involved: the reader's own read is the signal.
   */
  held: string;
}

/**
 * In-flight token streams: each job has zero or more readers (the original request, and clients
 * resuming after a dropped connection). Events from the tab are fanned out to all of them. When
 * the last reader goes away `onDetached` runs, and the owner decides whether to wait for a resume
 * or cancel. Readers live in memory only; after eviction the Worker re-subscribes (see
 * region-client/job-stream.ts) and the job's text in SQLite fills the gap.
 */
export class JobRelay {
  private readonly readers = new Map<string, Set<Subscriber>>();
  private nextId = 0;

  constructor(private readonly onDetached: (jobId: string) => void) {}

  /**
   * A new reader that first receives `backlog` (text it has not seen yet), then live events. The
   * reader id lets the Worker release it explicitly: a cancelled RPC stream is not always
   * noticed on this side.
   */
  subscribe(
    jobId: string,
    backlog: string,
    terminal?: JobEvent,
    skip = 0,
  ): { readerId: string; events: ReadableStream<Uint8Array> } {
    const readerId = `r${++this.nextId}`;
    let sub: Subscriber | undefined;
    // highWaterMark 1 (the default): one chunk may wait unread; more text is held (see `held`).
    const events = new ReadableStream<Uint8Array>({
      start: (controller) => {
        if (backlog) controller.enqueue(encodeEvent({ type: "delta", text: backlog }));
        if (terminal) {
          controller.enqueue(encodeEvent(terminal));
          controller.close();
          return;
        }
        let set = this.readers.get(jobId);
        if (!set) this.readers.set(jobId, (set = new Set()));
        set.add((sub = { id: readerId, controller, skip, held: "" }));
      },
      // The reader took a chunk: what was held meanwhile goes out as one event.
      pull: () => {
        if (sub?.held) sendHeld(sub);
      },
      cancel: () => this.release(jobId, readerId),
    });
    return { readerId, events };
  }

  /** Forget a reader; when it was the job's last, `onDetached` runs. Safe to call twice. */
  release(jobId: string, readerId: string): void {
    const set = this.readers.get(jobId);
    const sub = set && [...set].find((s) => s.id === readerId);
    if (!set || !sub) return;
    set.delete(sub);
    try {
      sub.controller.close();
    } catch {
      // Already cancelled by the reader.
    }
    if (set.size === 0) {
      this.readers.delete(jobId);
      this.onDetached(jobId);
    }
  }

  readerCount(jobId: string): number {
    return this.readers.get(jobId)?.size ?? 0;
  }

  push(jobId: string, event: JobEvent): void {
    const set = this.readers.get(jobId);
    if (!set) return;
    // Encoded at most once for every reader that takes it whole.
    let bytes: Uint8Array | undefined;
    const whole = () => (bytes ??= encodeEvent(event));
    if (event.type !== "delta") {
      this.readers.delete(jobId);
      for (const sub of set) {
        // Held text first: a terminal event is always the last thing a reader gets.
        if (sub.held) sendHeld(sub);
        sub.controller.enqueue(whole());
        sub.controller.close();
      }
      return;
    }
    for (const sub of set) {
      let text = event.text;
      if (sub.skip > 0) {
        if (text.length <= sub.skip) {
          sub.skip -= text.length;
          continue;
        }
        text = text.slice(sub.skip);
        sub.skip = 0;
      }
      if ((sub.controller.desiredSize ?? 1) <= 0) sub.held += text;
      else if (sub.held) {
        sub.held += text;
        sendHeld(sub);
      } else if (text === event.text) sub.controller.enqueue(whole());
      else sub.controller.enqueue(encodeEvent({ type: "delta", text }));
    }
  }
}

/** Send a reader's held text as one delta event. */
function sendHeld(sub: Subscriber): void {
  const text = sub.held;
  sub.held = "";
  sub.controller.enqueue(encodeEvent({ type: "delta", text }));
}
