import { describe, expect, it } from "vitest";
import type { JobEvent } from "./job-events.js";
import { JobRelay } from "./job-relay.js";

const decoder = new TextDecoder();

/** One read of a reader: the NDJSON events of the chunk it got (null at the end). */
async function readChunk(reader: ReadableStreamDefaultReader<Uint8Array>) {
  const { value, done } = await reader.read();
  if (done) return null;
  return decoder
    .decode(value)
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JobEvent);
}

const delta = (text: string): JobEvent => ({ type: "delta", text });
const done: JobEvent = {
  type: "done",
  finishReason: "stop",
  usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
};

describe("JobRelay: readers that fall behind get deltas coalesced", () => {
  it("a reader that keeps up gets each delta as it comes", async () => {
    const relay = new JobRelay(() => undefined);
    const reader = relay.subscribe("j", "").events.getReader();
    for (const t of ["a", "b", "c"]) {
      relay.push("j", delta(t));
      expect(await readChunk(reader)).toEqual([delta(t)]);
    }
    relay.push("j", done);
    expect(await readChunk(reader)).toEqual([done]);
    expect(await readChunk(reader)).toBeNull();
  });

  it("deltas that arrive while a chunk is unread go out as one delta at the next read", async () => {
    const relay = new JobRelay(() => undefined);
    const reader = relay.subscribe("j", "").events.getReader();
    for (const t of ["w0 ", "w1 ", "w2 ", "w3 "]) relay.push("j", delta(t));
    expect(await readChunk(reader)).toEqual([delta("w0 ")]);
    expect(await readChunk(reader)).toEqual([delta("w1 w2 w3 ")]);
    // Held text always comes before the terminal event.
    relay.push("j", delta("w4 "));
    relay.push("j", delta("w5 "));
    relay.push("j", done);
    const rest: JobEvent[] = [];
    for (let c = await readChunk(reader); c; c = await readChunk(reader)) rest.push(...c);
    expect(rest).toEqual([delta("w4 "), delta("w5 "), done]);
  });

  it("each reader is paced by its own reads, and a resumed reader still skips what it has", async () => {
    const relay = new JobRelay(() => undefined);
    const fast = relay.subscribe("j", "").events.getReader();
    // This reader resumed 4 characters ahead of the text the object holds.
    const slow = relay.subscribe("j", "", undefined, 4).events.getReader();
    const got = { fast: "", slow: "" };
    for (const t of ["ab", "cd", "ef", "gh"]) {
      relay.push("j", delta(t));
      const c = await readChunk(fast);
      got.fast += c!.map((e) => (e.type === "delta" ? e.text : "")).join("");
    }
    relay.push("j", done);
    const slowEvents: JobEvent[] = [];
    for (let c = await readChunk(slow); c; c = await readChunk(slow)) slowEvents.push(...c);
    expect(got.fast).toBe("abcdefgh");
    expect(slowEvents).toEqual([delta("ef"), delta("gh"), done]);
  });
});
