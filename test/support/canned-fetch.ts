/**
 * Canned HTTP answers for unit tests of the browser SDK in Node: a `fetch` that answers each call
 * from a script and records what was asked. (The browser tests run the SDK against the real
 * coordinator.)
 */
export interface CannedCall {
  method: string;
  url: string;
  body: unknown;
  headers: Record<string, string>;
}

export function cannedFetch(answers: Array<(call: CannedCall) => Response>): {
  fetch: typeof fetch;
  calls: CannedCall[];
} {
  const calls: CannedCall[] = [];
  const f = async (input: RequestInfo | URL, init?: RequestInit) => {
    const call = {
      method: init?.method ?? "GET",
      url: String(input),
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
    };
    calls.push(call);
    const answer = answers[calls.length - 1];
    if (!answer) throw new TypeError("no canned answer left");
    return answer(call);
  };
  return { fetch: f as typeof fetch, calls };
}

/** An SSE body of these events (objects become JSON `data:` lines, strings are sent as-is). */
export function sse(
  events: Array<object | string>,
  headers: Record<string, string> = {},
): Response {
  const text = events
    .map((e) => `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`)
    .join("");
  return new Response(text, {
    headers: { "content-type": "text/event-stream", ...headers },
  });
}

export function chunk(jobId: string, content: string | null, finish: string | null = null) {
  return {
    id: `chatcmpl-${jobId}`,
    object: "chat.completion.chunk",
    created: 1,
    model: "m",
    choices: [
      {
        index: 0,
        delta: content === null ? {} : { content },
        finish_reason: finish,
      },
    ],
  };
}
