import type { JobEvent, SubscribeResult } from "../region/job-events.js";

/** Re-subscriptions allowed when the Region object's stream breaks (eviction, restart). */
const MAX_RESUBSCRIBES = 3;

/**
 * Reads one job's events from its Region object for one HTTP response. If the stream breaks before
 * the job ended (the object was evicted or restarted), it re-subscribes after the text already
 * read, so the client sees neither a gap nor a repeat. `cancel` stops reading at once, even while
 * a read is pending; the Region object then starts the job's detach grace period.
 */
export class JobEventSource {
  private reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffered = "";
  private readonly pending: JobEvent[] = [];
  private delivered = 0;
  private resubscribes = 0;
  private cancelled = false;

  constructor(
    events: ReadableStream<Uint8Array>,
    private readonly resubscribe: (after: number) => Promise<SubscribeResult>,
  ) {
    this.reader = events.getReader();
  }

  /** The next event, or null once cancelled. A terminal event (done/error) is the last one. */
  async next(): Promise<JobEvent | null> {
    for (;;) {
      const event = this.pending.shift();
      if (event) {
        if (event.type === "delta") this.delivered += event.text.length;
        return event;
      }
      if (this.cancelled) return null;
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await this.reader.read();
      } catch {
        chunk = { done: true, value: undefined };
      }
      if (this.cancelled) return null;
      if (!chunk.done) {
        this.buffer(chunk.value);
        continue;
      }
      // The stream ended without a terminal event: the Region object went away mid-job.
      if (++this.resubscribes > MAX_RESUBSCRIBES) {
        return { type: "error", error: { code: "internal", message: "lost contact with the job" } };
      }
      const again = await this.resubscribe(this.delivered);
      if (!again.ok) return { type: "error", error: again.error };
      this.reader = again.events.getReader();
      this.buffered = "";
    }
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    await this.reader.cancel("client went away").catch(() => undefined);
  }

  private buffer(bytes: Uint8Array): void {
    this.buffered += this.decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      if (line) this.pending.push(JSON.parse(line) as JobEvent);
    }
  }
}
