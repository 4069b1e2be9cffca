import type { Usage } from "../../shared/protocol/job.js";
import { ApiError, apiErrorFromJob } from "../http/api-error.js";
import type { JobEvent } from "../region/job-events.js";
import type { JobStream } from "../region-client/job-stream.js";
import { QuietTimer } from "../http/quiet-timer.js";
import type { ResponseFormat } from "./response-format.js";

const encoder = new TextEncoder();
const sse = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
/** An SSE comment: clients ignore it; proxies see traffic, and a write finds a vanished client. */
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");

/** One job answering one choice of the response (`n` > 1 runs one job per choice). */
export interface ChoiceJob {
  source: JobStream;
  format: ResponseFormat;
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

export type ChoicesResponseInit = Omit<JobResponseInit, "source" | "format"> & {
  choices: ChoiceJob[];
};

/**
 * The usage of a response with several choices, as OpenAI counts it: the prompt once (every
 * choice's job read the same prompt), the completion tokens of all choices summed.
 */
export function sumUsage(usages: Usage[]): Usage {
  const prompt = Math.max(0, ...usages.map((u) => u.prompt_tokens));
  const completion = usages.reduce((n, u) => n + u.completion_tokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
}

/** Stream one job (a one-choice response, or a resumed job) as OpenAI server-sent events. */
export function streamJob(init: JobResponseInit): Response {
  const { source, format, ...rest } = init;
  return streamChoices({ ...rest, choices: [{ source, format }] });
}

/**
 * Stream a response's choices as OpenAI server-sent events, ending with `data: [DONE]`. Each
 * choice's chunks carry its `index` and are sent as its job produces them; each choice ends with
 * its own `finish_reason` chunk; the usage chunk (when asked) comes once all have finished. A
 * failure after the stream started can no longer change the status code, so it is sent as an
 * `error` event (the `openai` client raises it as an APIError), the other choices' jobs are
 * cancelled, and the stream ends without [DONE].
 *
 * While no event comes (the job waits for a tab, or the tab prefills for a minute) a keep-alive
 * comment is written every `source.keepAliveMs`: proxies keep the connection open, and a client
 * that went away is noticed at that write (a runtime sees a closed connection only when it
 * writes), so its concurrency slot and its tab are freed within the interval, not at the first
 * token.
 */
export function streamChoices(init: ChoicesResponseInit): Response {
  const { choices } = init;
  /** Reads of a choice's job that outlived a keep-alive; the next pull waits for them again. */
  const pending = new Map<number, Promise<{ i: number; event: JobEvent | null }>>();
  const live = new Set(choices.map((_, i) => i));
  const usages: Usage[] = [];
  const keepAliveMs = Math.min(...choices.map((c) => c.source.keepAliveMs));
  // One keep-alive timer for the whole response, not one per read (quiet-timer.ts).
  const quiet = new QuietTimer(keepAliveMs);
  const cancelAll = () => {
    quiet.stop();
    return Promise.all(choices.map((c) => c.source.cancel()));
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (!init.opening) return;
      for (const c of choices) {
        const opening = c.format.opening();
        if (opening) controller.enqueue(sse(opening));
      }
    },
    // Loops until it sends something: a pull that enqueues nothing is not called again, so a
    // delta that yields no chunk (empty text, or a tool-call answer read whole at the end) must not
    // end the pull.
    async pull(controller) {
      for (;;) {
        for (const i of live) {
          if (!pending.has(i))
            pending.set(
              i,
              choices[i]!.source.next().then((event) => ({ i, event })),
            );
        }
        // One choice (the usual case): its read itself, no race to build per token.
        const next =
          pending.size === 1 ? pending.values().next().value! : Promise.race(pending.values());
        const read = await quiet.wait(next);
        if (read === "quiet") return controller.enqueue(KEEP_ALIVE);
        const { i, event } = read;
        pending.delete(i);
        if (!event) {
          await cancelAll();
          return controller.close();
        }
        const { format } = choices[i]!;
        switch (event.type) {
          case "delta":
          case "logprobs": {
            const chunks =
              event.type === "logprobs"
                ? format.logprobs(event.entries)
                : event.text
                  ? format.delta(event.text)
                  : [];
            for (const c of chunks) controller.enqueue(sse(c));
            if (chunks.length) return;
            continue;
          }
          case "done": {
            let closing: object[];
            try {
              closing = format.closing(event.finishReason);
            } catch (err) {
              if (!(err instanceof ApiError)) throw err;
              controller.enqueue(sse(err.toBody(init.requestId)));
              break;
            }
            for (const c of closing) controller.enqueue(sse(c));
            live.delete(i);
            usages[i] = event.usage;
            if (live.size) {
              if (closing.length) return;
              continue;
            }
            // Asked for usage: the stream always ends with it (choices: []), then [DONE].
            if (init.includeUsage) controller.enqueue(sse(format.usage(sumUsage(usages))));
            controller.enqueue(encoder.encode("data: [DONE]\n\n"));
            quiet.stop();
            return controller.close();
          }
          case "restart":
            format.restart();
            continue;
          case "error":
            controller.enqueue(sse(apiErrorFromJob(event.error).toBody(init.requestId)));
            break;
        }
        await cancelAll();
        return controller.close();
      }
    },
    async cancel() {
      await cancelAll();
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

/** One job's whole text and how it ended; failures become HTTP errors. */
async function collectOne(source: JobStream) {
  let text = "";
  for (;;) {
    const event = await source.next();
    if (!event)
      throw new ApiError(
        502,
        "server_error",
        "The job ended without a result.",
        null,
        "incomplete",
      );
    if (event.type === "delta") text += event.text;
    // A collected answer takes the entries the done event carries (checked against the tokens).
    else if (event.type === "logprobs") continue;
    else if (event.type === "restart") text = "";
    else if (event.type === "done") return { text, ...event };
    else throw apiErrorFromJob(event.error);
  }
}

/** Collect a whole job for a non-streaming request; failures become HTTP errors. */
export function collectJob(init: JobResponseInit): Promise<Response> {
  const { source, format, ...rest } = init;
  return collectChoices({ ...rest, choices: [{ source, format }] });
}

/**
 * Collect every choice's job for a non-streaming request and answer one body whose `choices`
 * hold each in index order, with the usage summed (sumUsage). The first failure is the answer
 * (an HTTP error) and the other jobs are cancelled.
 */
export async function collectChoices(init: ChoicesResponseInit): Promise<Response> {
  const { choices } = init;
  let results: Awaited<ReturnType<typeof collectOne>>[];
  try {
    results = await Promise.all(choices.map((c) => collectOne(c.source)));
  } catch (err) {
    await Promise.all(choices.map((c) => c.source.cancel()));
    throw err;
  }
  const bodies = results.map(
    (r, i) =>
      choices[i]!.format.whole(r.text, r.finishReason, r.usage, r.logprobs) as {
        choices: unknown[];
        usage: Usage;
      },
  );
  const body = {
    ...bodies[0]!,
    choices: bodies.flatMap((b) => b.choices),
    usage: sumUsage(results.map((r) => r.usage)),
  };
  return Response.json(body, { headers: init.headers });
}
