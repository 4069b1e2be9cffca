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

  it("drops an unterminated last event and releases the body", async () => {
    const stream = body("data: whole\n\ndata: cut");
    expect(await all(stream)).toEqual(["whole"]);
    expect(stream.locked).toBe(false);
  });
});
