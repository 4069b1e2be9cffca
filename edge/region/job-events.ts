import type { FinishReason, JobError, Usage } from "../../shared/protocol/job.js";

/**
 * Events a Region object streams to the Worker for one job, as NDJSON over the RPC stream. Both
 * ends are this coordinator, so these are plain types rather than a parsed boundary.
 */
export type JobEvent =
  | { type: "delta"; text: string }
  | { type: "done"; finishReason: FinishReason; usage: Usage }
  | { type: "error"; error: JobError };

const encoder = new TextEncoder();

export function encodeEvent(event: JobEvent): Uint8Array {
  return encoder.encode(JSON.stringify(event) + "\n");
}

/** Split an NDJSON byte stream back into events. */
export async function* readEvents(stream: ReadableStream<Uint8Array>): AsyncGenerator<JobEvent> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line) yield JSON.parse(line) as JobEvent;
      }
    }
  } finally {
    // A consumer that stops early (client went away) cancels the stream, which tells the Region
    // object to stop the tab.
    if (!finished) await reader.cancel("consumer stopped");
    else reader.releaseLock();
  }
}

/** What `RegionDurableObject.openJob` answers. */
export type OpenJobResult =
  | { ok: true; jobId: string; nodeId: string; events: ReadableStream<Uint8Array> }
  | { ok: false; error: JobError };
