import type { JobEvent, SubscribeResult } from "../region/job-events.js";
import type { regionStub } from "../region/region-stub.js";

/** Re-subscriptions allowed after the Region object's stream broke or could not be reached. */
const MAX_FAILED_RESUBSCRIBES = 3;

/** Silence after which a response re-subscribes to its job (STREAM_IDLE_MS, default 5 s). */
export { streamIdleMs } from "../config.js";
import { readConfig, streamIdleMs } from "../config.js";
import { QuietTimer } from "../http/quiet-timer.js";

/** How a stream reaches its job's Region object. */
export interface JobChannel {
  subscribe(after: number): Promise<SubscribeResult>;
  release(readerId: string): Promise<void>;
}

/**
 * The one way the Worker reads a job: from a first subscription (the opened job, or a resume
 * from character `from`), re-subscribing to the same Region object as needed.
 */
export function jobStream(
  env: { STREAM_IDLE_MS?: string; SSE_KEEPALIVE_MS?: string },
  stub: ReturnType<typeof regionStub>,
  job: { jobId: string; owner: string | null; from: number },
  first: { readerId: string; events: ReadableStream<Uint8Array> },
): JobStream {
  const { jobId, owner, from } = job;
  return new JobStream(
    first,
    {
      subscribe: (after) => stub.subscribe(jobId, from + after, owner),
      release: (readerId) => stub.release(jobId, readerId),
    },
    streamIdleMs(env),
    readConfig(env).sseKeepAliveMs,
  );
}

/**
 * Reads one job's events from its Region object for one HTTP response. If the stream breaks, or
 * stays silent for `idleMs` (a stream from an evicted object can hang rather than fail), it
 * re-subscribes after the text already read, so the client sees neither a gap nor a repeat.
 * `cancel` stops at once, even while a read is pending, and releases the reader explicitly.
 */
export class JobStream {
  private reader: ReadableStreamDefaultReader<Uint8Array>;
  private readerId: string;
  private decoder = new TextDecoder();
  private buffered = "";
  private readonly pending: JobEvent[] = [];
  private delivered = 0;
  private failures = 0;
  private cancelled = false;
  /** One idle timer for the stream, not one per read (http/quiet-timer.ts). */
  private readonly idle: QuietTimer;

  constructor(
    first: { readerId: string; events: ReadableStream<Uint8Array> },
    private readonly channel: JobChannel,
    private readonly idleMs: number,
    /** How often a streamed response writes a keep-alive comment while no event comes. */
    readonly keepAliveMs = 10_000,
  ) {
    this.reader = first.events.getReader();
    this.readerId = first.readerId;
    this.idle = new QuietTimer(idleMs);
  }

  /** The next event, or null once cancelled. A terminal event (done/error) is the last one. */
  async next(): Promise<JobEvent | null> {
    for (;;) {
      const event = this.pending.shift();
      if (event) {
        if (event.type === "delta") this.delivered += event.text.length;
        if (event.type === "restart") this.delivered = 0;
        // The last event: no idle check outlives the stream.
        if (event.type === "done" || event.type === "error") this.idle.stop();
        return event;
      }
      if (this.cancelled) return null;
      const chunk = await this.readOrIdle();
      if (this.cancelled) return null;
      if (chunk === "quiet") {
        const failed = await this.switchStream();
        if (failed) return failed;
        continue;
      }
      if (!chunk.done) {
        this.buffer(chunk.value);
        continue;
      }
      // The stream ended without a terminal event: the Region object went away mid-job.
      if (++this.failures > MAX_FAILED_RESUBSCRIBES) {
        return { type: "error", error: { code: "internal", message: "lost contact with the job" } };
      }
      const failed = await this.switchStream();
      if (failed) return failed;
    }
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.idle.stop();
    void this.reader.cancel("client went away").catch(() => undefined);
    await this.channel.release(this.readerId).catch(() => undefined);
  }

  /** The next chunk, or "quiet" when the stream stayed silent for `idleMs`. */
  private readOrIdle(): Promise<ReadableStreamReadResult<Uint8Array> | "quiet"> {
    return this.idle.wait(
      this.reader
        .read()
        .catch((): ReadableStreamReadResult<Uint8Array> => ({ done: true, value: undefined })),
    );
  }

  /** Subscribe afresh after what was delivered, then let go of the old reader. */
  private async switchStream(): Promise<JobEvent | null> {
    let again: SubscribeResult;
    try {
      again = await this.channel.subscribe(this.delivered);
    } catch (e) {
      if (++this.failures > MAX_FAILED_RESUBSCRIBES) {
        return {
          type: "error",
          error: { code: "internal", message: `lost contact with the job: ${String(e)}` },
        };
      }
      return null;
    }
    if (!again.ok) return { type: "error", error: again.error };
    const old = { reader: this.reader, id: this.readerId };
    this.reader = again.events.getReader();
    this.readerId = again.readerId;
    // Only events of the new stream count; anything half-read from the old one is repeated there.
    this.buffered = "";
    this.decoder = new TextDecoder();
    this.pending.length = 0;
    void old.reader.cancel().catch(() => undefined);
    await this.channel.release(old.id).catch(() => undefined);
    return null;
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
