import { encodeEvent, type JobEvent } from "./job-events.js";

/**
 * In-flight token streams, one per job: events from a tab's socket are pushed into the stream the
 * Worker is reading over RPC. Holding the stream open keeps the object in memory while a job
 * streams; the job's durable record lives in JobStore.
 */
export class JobRelay {
  private readonly streams = new Map<string, ReadableStreamDefaultController<Uint8Array>>();

  /** Open the stream for a job. `onCancel` runs when the reader goes away (client disconnected). */
  open(jobId: string, onCancel: (reason: unknown) => void): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.streams.set(jobId, controller);
      },
      cancel: (reason) => {
        if (this.streams.delete(jobId)) onCancel(reason);
      },
    });
  }

  has(jobId: string): boolean {
    return this.streams.has(jobId);
  }

  push(jobId: string, event: JobEvent): void {
    const controller = this.streams.get(jobId);
    if (!controller) return;
    controller.enqueue(encodeEvent(event));
    if (event.type !== "delta") {
      this.streams.delete(jobId);
      controller.close();
    }
  }

  /** End a stream without a final event (used after a cancel the client asked for). */
  close(jobId: string): void {
    const controller = this.streams.get(jobId);
    if (!controller) return;
    this.streams.delete(jobId);
    try {
      controller.close();
    } catch {
      // Already errored by a cancelled reader: nothing left to close.
    }
  }
}
