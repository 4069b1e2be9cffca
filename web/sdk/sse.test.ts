import { describe, expect, it } from "vitest";
import { sseData } from "./sse.js";

/** The one SSE reader, in Node (tests and benchmarks read the coordinator's streams with it too). */
function body(...pieces: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const p of pieces) controller.enqueue(encoder.encode(p));
      controller.close();
    },
  });
}

async function all(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const data of sseData(stream)) out.push(data);
  return out;
}

describe("sseData", () => {
  it("yields each event's data across chunk boundaries, skipping comments and other fields", async () => {
    const events = await all(
      body(
        ': keep-alive\n\ndata: {"a"',
        ":1}\n\nevent: x\r\ndata: two\r\ndata: lines\r\n\r\n",
        "data: [DONE]\n\n",
      ),
    );
    expect(events).toEqual(['{"a":1}', "two\nlines", "[DONE]"]);
  });

  // The SSE spec: a line ends with CRLF, LF or CR, and a blank line ends an event.
  const separators = {
    "\\n\\n": "\n\n",
    "\\r\\r": "\r\r",
    "\\r\\n\\r\\n": "\r\n\r\n",
    "\\r\\n\\n": "\r\n\n",
    "\\n\\r\\n": "\n\r\n",
    "\\r\\n\\r": "\r\n\r",
    "\\n\\r": "\n\r",
  };
  for (const [name, end] of Object.entries(separators)) {
    it(`ends events at ${name} and loses no character of the next`, async () => {
      const stream = `data: one${end}data: two${end}data: [DONE]${end}`;
      expect(await all(body(stream))).toEqual(["one", "two", "[DONE]"]);
      // The same, one character per chunk: a CR at a chunk's end may be the first half of a CRLF.
      expect(await all(body(...stream)), "one character per chunk").toEqual([
        "one",
        "two",
        "[DONE]",
      ]);
    });
  }

  it("splits an event's lines at CR and CRLF too", async () => {
    expect(await all(body("data: a\rdata: b\r\ndata: c\n\n"))).toEqual(["a\nb\nc"]);
  });

  it("drops an unterminated last event and releases the body", async () => {
    const stream = body("data: whole\n\ndata: cut");
    expect(await all(stream)).toEqual(["whole"]);
    expect(stream.locked).toBe(false);
  });
});
