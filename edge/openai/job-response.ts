import { ApiError, apiErrorFromJob } from "../http/api-error.js";
import type { JobEvent } from "../region/job-events.js";
import type { JobStream } from "../region-client/job-stream.js";
import type { ResponseFormat } from "./response-format.js";

const encoder = new TextEncoder();
const sse = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
/** An SSE comment: clients ignore it; proxies see traffic, and a write finds a vanished client. */
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");

/** The event `next` resolves to, or "quiet" when `ms` pass first (the read stays pending). */
async function nextOrQuiet(next: Promise<JobEvent | null>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quiet = new Promise<"quiet">((resolve) => {
    timer = setTimeout(() => resolve("quiet"), ms);
  });
  try {
    return await Promise.race([next, quiet]);
  } finally {
    clearTimeout(timer);
  }
}

export interface JobResponseInit {
  source: JobStream;
  format: ResponseFormat;
  includeUsage: boolean;
  headers: Record<string, string>;
  requestId: string;
  /** Whether to send the opening chunk (not when resuming a stream that already had it). */
  opening: boolean;
}

/**
 * Stream a job as OpenAI server-sent events, ending with `data: [DONE]`. A failure after the
 * stream started can no longer change the status code, so it is sent as an `error` event (the
 * `openai` client raises it as an APIError) and the stream ends without [DONE].
 *
 * While no event comes (the job waits for a tab, or the tab prefills for a minute) a keep-alive
 * comment is written every `source.keepAliveMs`: proxies keep the connection open, and a client
 * that went away is noticed at that write (a runtime sees a closed connection only when it
 * writes), so its concurrency slot and its tab are freed within the interval, not at the first
 * token.
 */
export function streamJob(init: JobResponseInit): Response {
  /** A read of the job that outlived a keep-alive; the next pull waits for it again. */
  let pending: Promise<JobEvent | null> | null = null;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const opening = init.opening ? init.format.opening() : null;
      if (opening) controller.enqueue(sse(opening));
    },
    // Loops until it sends something: a pull that enqueues nothing is not called again, so a
    // delta that yields no chunk (empty text, or a tool-call answer read whole at the end) must not
    // end the pull.
    async pull(controller) {
      for (;;) {
        pending ??= init.source.next();
        const event = await nextOrQuiet(pending, init.source.keepAliveMs);
        if (event === "quiet") return controller.enqueue(KEEP_ALIVE);
        pending = null;
        if (!event) return controller.close();
        switch (event.type) {
          case "delta": {
            const chunks = event.text ? init.format.delta(event.text) : [];
            for (const c of chunks) controller.enqueue(sse(c));
            if (chunks.length) return;
            continue;
          }
          case "done": {
            let closing: object[];
            try {
              closing = init.format.closing(event.finishReason);
            } catch (err) {
              if (!(err instanceof ApiError)) throw err;
              controller.enqueue(sse(err.toBody(init.requestId)));
              break;
            }
            for (const c of closing) controller.enqueue(sse(c));
            // Asked for usage: the stream always ends with it (choices: []), then [DONE].
            if (init.includeUsage) controller.enqueue(sse(init.format.usage(event.usage)));
            controller.enqueue(encoder.encode("data: [DONE]\n\n"));
            break;
          }
          case "error":
            controller.enqueue(sse(apiErrorFromJob(event.error).toBody(init.requestId)));
            break;
        }
        return controller.close();
      }
    },
    async cancel() {
      await init.source.cancel();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      ...init.headers,
    },
  });
}

/** Collect a whole job for a non-streaming request; failures become HTTP errors. */
export async function collectJob(init: JobResponseInit): Promise<Response> {
  let text = "";
  for (;;) {
    const event = await init.source.next();
    if (!event)
      throw new ApiError(
        502,
        "server_error",
        "The job ended without a result.",
        null,
        "incomplete",
      );
    if (event.type === "delta") text += event.text;
    else if (event.type === "done") {
      return Response.json(init.format.whole(text, event.finishReason, event.usage), {
        headers: init.headers,
      });
    } else throw apiErrorFromJob(event.error);
  }
}
