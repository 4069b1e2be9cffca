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
   * Delta text that arrived while the reader still had an unread chunk queued: handed over as one
   * delta when it reads (the stream's pull), so a reader that falls behind gets fewer, larger
   * chunks instead of a queue of one-token ones (each chunk costs an RPC stream write, a read, a
   * decode and an SSE chunk in the Worker). A reader that keeps up gets every delta at once.
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
    const events = new ReadableStream<Uint8Array>(
      {
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
        // The reader took the queued chunk: what was held back for it goes now.
        pull: () => {
          if (sub?.held) flush(sub);
        },
        cancel: () => this.release(jobId, readerId),
      },
      // One chunk may wait unread; text arriving behind it is held and joined (see `held`).
      { highWaterMark: 1 },
    );
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
    // Encoded once for every reader that takes it whole and at once.
    let bytes: Uint8Array | undefined;
    for (const sub of set) {
      if (event.type === "delta") {
        let text = event.text;
        if (sub.skip > 0) {
          if (text.length <= sub.skip) {
            sub.skip -= text.length;
            continue;
          }
          text = text.slice(sub.skip);
          sub.skip = 0;
        }
        if (!sub.held && (sub.controller.desiredSize ?? 0) > 0) {
          sub.controller.enqueue(
            text === event.text
              ? (bytes ??= encodeEvent(event))
              : encodeEvent({ type: "delta", text }),
          );
        } else sub.held += text;
        continue;
      }
      // Any other event keeps its place after the text before it.
      if (sub.held) flush(sub);
      // The answer starts again: whatever a reader had is gone, so it skips nothing of the new.
      if (event.type === "restart") sub.skip = 0;
      sub.controller.enqueue((bytes ??= encodeEvent(event)));
    }
    if (event.type === "done" || event.type === "error") {
      this.readers.delete(jobId);
      for (const sub of set) sub.controller.close();
    }
  }
}

/** Hand a reader the text held back for it, as one delta. */
function flush(sub: Subscriber): void {
  const text = sub.held;
  sub.held = "";
  try {
    sub.controller.enqueue(encodeEvent({ type: "delta", text }));
  } catch {
    // The reader cancelled; release() forgets it.
  }
}
