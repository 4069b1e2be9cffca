/**
 * Server-sent events as the coordinator writes them (`data: <json>\n\n`, ending `data: [DONE]`):
 * yields each event's data text. Lines other than `data:` (comments such as `: keep-alive`,
 * `event:`) are skipped; an event's several `data:` lines are joined with "\n"; an unterminated
 * last event is dropped. Needs only `ReadableStream` and `TextDecoder`, so it runs in browsers,
 * Workers and Node alike — the one SSE reader for the SDK, tests and benchmarks.
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer[end] === "\r" ? 4 : 2));
        const data = block
          .split(/\r?\n/)
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(l[5] === " " ? 6 : 5))
          .join("\n");
        if (data) yield data;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
