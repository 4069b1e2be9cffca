/**
 * The end of an event: a blank line, i.e. two line ends, each CRLF, LF or CR as the SSE spec
 * allows (so \n\n, \r\r, \r\n\r\n and any mix). A CR followed by LF is one line end, not two.
 */
const EVENT_END = /(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)/;
const LINE_END = /\r\n|\r|\n/;

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
      let end: RegExpExecArray | null;
      while ((end = EVENT_END.exec(buffer)) !== null) {
        const block = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        const data = block
          .split(LINE_END)
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
