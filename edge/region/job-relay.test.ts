import { describe, expect, it } from "vitest";
import type { JobEvent } from "./job-events.js";
import { JobRelay } from "./job-relay.js";

/** Read one chunk of a reader's NDJSON stream as the events it holds. */
async function readChunk(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<JobEvent[]> {
  const { done, value } = await reader.read();
  if (done) return [];
  return new TextDecoder()
    .decode(value)
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as JobEvent);
}

/** Every chunk until the stream ends (one array of events per chunk). */
async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<JobEvent[][]> {
  const chunks: JobEvent[][] = [];
  for (;;) {
    const chunk = await readChunk(reader);
    if (!chunk.length) return chunks;
    chunks.push(chunk);
  }
}

const textOf = (chunks: JobEvent[][]) =>
  chunks
    .flat()
    .map((e) => (e.type === "delta" ? e.text : ""))
    .join("");

const done: JobEvent = {
  type: "done",
  finishReason: "stop",
  usage: { prompt_tokens: 1, completion_tokens: 50, total_tokens: 51 },
};

describe("JobRelay", () => {
  it("a reader that falls behind gets the deltas joined, all of them, in order", async () => {
    const relay = new JobRelay(() => undefined);
    const { events } = relay.subscribe("j", "");
    const reader = events.getReader();
    for (let i = 0; i < 50; i++) relay.push("j", { type: "delta", text: ` t${i}` });
    relay.push("j", done);
    const chunks = await readAll(reader);
    expect(textOf(chunks)).toBe(Array.from({ length: 50 }, (_, i) => ` t${i}`).join(""));
    // One chunk was already queued when the reader fell behind; the rest came as one delta.
    expect(chunks.length).toBeLessThanOrEqual(3);
    expect(chunks.flat().at(-1)).toEqual(done);
  });

  it("a reader that keeps up gets every delta as it comes (nothing held back)", async () => {
    const relay = new JobRelay(() => undefined);
    const reader = relay.subscribe("j", "").events.getReader();
    for (let i = 0; i < 5; i++) {
      const next = readChunk(reader);
      relay.push("j", { type: "delta", text: ` t${i}` });
      expect(await next).toEqual([{ type: "delta", text: ` t${i}` }]);
    }
  });

  it("held text goes before the event that follows it (logprobs, restart)", async () => {
    const relay = new JobRelay(() => undefined);
    const reader = relay.subscribe("j", "").events.getReader();
    relay.push("j", { type: "delta", text: "a" });
    relay.push("j", { type: "delta", text: "b" });
    relay.push("j", { type: "delta", text: "c" });
    relay.push("j", { type: "logprobs", entries: [] });
    relay.push("j", { type: "delta", text: "d" });
    relay.push("j", { type: "restart" });
    relay.push("j", { type: "delta", text: "e" });
    relay.push("j", done);
    const types = (await readAll(reader)).flat().map((e) => (e.type === "delta" ? e.text : e.type));
    expect(types).toEqual(["a", "bc", "logprobs", "d", "restart", "e", "done"]);
  });

  it("a resumed reader still skips the text it already has, held or not", async () => {
    const relay = new JobRelay(() => undefined);
    const reader = relay.subscribe("j", "", undefined, 3).events.getReader();
    relay.push("j", { type: "delta", text: "ab" });
    relay.push("j", { type: "delta", text: "cde" });
    relay.push("j", { type: "delta", text: "fg" });
    relay.push("j", done);
    expect(textOf(await readAll(reader))).toBe("defg");
  });

  it("a slow reader does not slow a fast one: each gets the whole text", async () => {
    const relay = new JobRelay(() => undefined);
    const slow = relay.subscribe("j", "").events.getReader();
    const fast = relay.subscribe("j", "").events.getReader();
    const fastChunks: JobEvent[][] = [];
    for (let i = 0; i < 10; i++) {
      const next = readChunk(fast);
      relay.push("j", { type: "delta", text: `${i}` });
      fastChunks.push(await next);
    }
    relay.push("j", done);
    fastChunks.push(...(await readAll(fast)));
    expect(fastChunks.length).toBe(11);
    const slowChunks = await readAll(slow);
    expect(textOf(slowChunks)).toBe("0123456789");
    expect(slowChunks.length).toBeLessThan(fastChunks.length);
  });
});
