import { encodeEvent, type JobEvent } from "./job-events.js";

interface Subscriber {
  id: string;
  controller: ReadableStreamDefaultController<Uint8Array>;
  /**
   * Characters of live text this reader already has: it resumed past the text the object holds
   * (the object lost an unwritten batch that the tab is resending), so that much is skipped.
   */
  skip: number;
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
        set.add({ id: readerId, controller, skip });
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
    // Encoded once for every reader that takes it whole.
    const bytes = encodeEvent(event);
    for (const sub of set) {
      // The answer starts again: whatever a reader had is gone, so it skips nothing of the new.
      if (event.type === "restart") sub.skip = 0;
      if (sub.skip === 0 || event.type !== "delta") sub.controller.enqueue(bytes);
      else if (event.text.length <= sub.skip) sub.skip -= event.text.length;
      else {
        sub.controller.enqueue(encodeEvent({ type: "delta", text: event.text.slice(sub.skip) }));
        sub.skip = 0;
      }
    }
    if (event.type === "done" || event.type === "error") {
      this.readers.delete(jobId);
      for (const sub of set) sub.controller.close();
    }
  }
}
