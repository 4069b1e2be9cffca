import type { OpenAIErrorBody } from "../../shared/openai/errors.js";
import { ApiError, apiErrorFromJob } from "../http/api-error.js";
import { readEvents } from "../region/job-events.js";
import type { ResponseFormat } from "./response-format.js";

const encoder = new TextEncoder();
const sse = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);

export interface JobResponseInit {
  events: ReadableStream<Uint8Array>;
  format: ResponseFormat;
  includeUsage: boolean;
  headers: Record<string, string>;
  requestId: string;
  /** Called when the client goes away before the job ended. */
  onClientGone: () => void;
}

/**
 * Stream a job as OpenAI server-sent events, ending with `data: [DONE]`. A failure after the
 * stream started can no longer change the status code, so it is sent as an `error` event (the
 * `openai` client raises it as an APIError) and the stream ends without [DONE].
 */
export function streamJob(init: JobResponseInit): Response {
  const events = readEvents(init.events);
  let finished = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const opening = init.format.opening();
      if (opening) controller.enqueue(sse(opening));
    },
    async pull(controller) {
      const next = await events.next();
      if (next.done) {
        finished = true;
        controller.close();
        return;
      }
      const event = next.value;
      switch (event.type) {
        case "delta":
          if (event.text) controller.enqueue(sse(init.format.delta(event.text)));
          return;
        case "done":
          controller.enqueue(sse(init.format.closing(event.finishReason)));
          if (init.includeUsage) controller.enqueue(sse(init.format.usage(event.usage)));
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          break;
        case "error": {
          const err = apiErrorFromJob(event.error);
          const payload: OpenAIErrorBody = {
            error: {
              message: err.message,
              type: err.type,
              param: err.param,
              code: err.code,
              request_id: init.requestId,
            },
          };
          controller.enqueue(sse(payload));
          break;
        }
      }
      finished = true;
      controller.close();
      await events.return(undefined);
    },
    async cancel() {
      if (!finished) init.onClientGone();
      await events.return(undefined);
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
  for await (const event of readEvents(init.events)) {
    if (event.type === "delta") text += event.text;
    else if (event.type === "done") {
      return Response.json(init.format.whole(text, event.finishReason, event.usage), {
        headers: init.headers,
      });
    } else throw apiErrorFromJob(event.error);
  }
  throw new ApiError(502, "server_error", "The job ended without a result.", null, "incomplete");
}
