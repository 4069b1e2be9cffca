import { describe, expect, it, vi } from "vitest";
import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";
import { chunk, sse } from "../../test/support/canned-fetch.js";
import { DEFAULT_CHECKPOINTS } from "../direct/checkpoints.js";
import {
  DIRECT_WINDOW,
  type DirectFeed,
  type DirectListener,
} from "../direct/client-receiver-types.js";
import { CHAT } from "./answer-shape.js";
import { Stream, type StreamClient } from "./stream.js";
import type { ChatCompletionChunk } from "./types.js";

/**
 * The stream's direct path against a tab that aborted or lies: the relay (the coordinator's copy)
 * is the record, so it alone ends the stream and gives its finish reason and usage, and direct
 * text is taken only while it stays close to the relay's, agrees with it and comes from one tab.
 */
const JOB = "job_weur_0123456789abcdef0123456789abcdef";
const USAGE = { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 };
const usageChunk = (usage = USAGE) => ({ ...chunk(JOB, null), choices: [], usage });

/** A relay body the test writes event by event. */
function relay() {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (ctrl = c) });
  const enc = new TextEncoder();
  return {
    res: new Response(body, { headers: { "content-type": "text/event-stream" } }),
    send(...events: Array<object | string>) {
      for (const e of events)
        ctrl.enqueue(enc.encode(`data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`));
    },
    /** The rest of `text`, a stop and the relay's usage, then [DONE]. */
    finish(text: string, usage = USAGE) {
      this.send(chunk(JOB, text), chunk(JOB, null, "stop"), usageChunk(usage), "[DONE]");
      ctrl.close();
    },
  };
}

/** A feed the test plays the tabs on (channel 1, 2, ...). */
function feed() {
  let listener: DirectListener | null = null;
  const early: Array<[DirectMessage, number]> = [];
  const f: DirectFeed = {
    connected: true,
    listen: (l) => {
      listener = l;
      for (const [m, c] of early.splice(0)) l(m, c);
    },
    close: () => {},
  };
  const send = (msg: DirectMessage, channel = 1) =>
    listener ? listener(msg, channel) : early.push([msg, channel]);
  return {
    feed: f,
    delta: (offset: number, text: string, channel = 1) =>
      send({ type: "delta", jobId: JOB, offset, text }, channel),
    done: (chars: number, finishReason: "stop" | "length" | "abort", usage = USAGE, channel = 1) =>
      send({ type: "done", jobId: JOB, chars, finishReason, usage }, channel),
  };
}

const client = (resumes: Response[] = []): StreamClient => ({
  request: async () => resumes.shift() ?? new Response("", { status: 500 }),
  arrived: () => {},
  maxResumes: resumes.length,
  transport: "p2p",
});

function open(first: Response | null, direct: DirectFeed | null, extra = {}) {
  return new Stream<ChatCompletionChunk>({
    client: client(),
    shape: CHAT,
    params: { model: "m", stream: true, stream_options: { include_usage: true } },
    jobId: JOB,
    first,
    direct,
    ...extra,
  });
}

/** Reads the stream in the background; `got` fills as chunks come. */
function read(stream: Stream<ChatCompletionChunk>) {
  const got = { text: "", finish: null as string | null, usage: null as unknown, ended: false };
  const done = (async () => {
    for await (const c of stream) {
      got.text += c.choices[0]?.delta.content ?? "";
      got.finish = c.choices[0]?.finish_reason ?? got.finish;
      got.usage = c.usage ?? got.usage;
    }
    got.ended = true;
    return got;
  })();
  return { got, done };
}

/** A stream being read, with its relay and the tabs of its direct path. */
function started() {
  const r = relay();
  const d = feed();
  const s = open(r.res, d.feed);
  return { r, d, s, ...read(s) };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

/** The text of the chunks `it` has left. */
async function rest(it: AsyncIterator<ChatCompletionChunk>): Promise<string> {
  let text = "";
  for (let c = await it.next(); !c.done; c = await it.next())
    text += c.value.choices[0]?.delta.content ?? "";
  return text;
}

describe("Stream: the direct path", () => {
  it("hands out direct text before the relay has it", async () => {
    const { r, d, s, got, done } = started();
    d.delta(0, "Hello");
    await vi.waitFor(() => expect(got.text).toBe("Hello"));
    d.delta(5, " world");
    r.send(chunk(JOB, "Hello"));
    r.finish(" world");
    expect(await done).toMatchObject({ text: "Hello world", finish: "stop", usage: USAGE });
    expect(s.stats).toMatchObject({
      firstBy: { direct: 11, relay: 0 },
      diverged: false,
      directStopped: null,
    });
  });

  it.each([
    ["aborted (it lost a hedge race, or was stopped)", 12, "abort"],
    ["lying, with chars 0", 0, "stop"],
  ] as const)("a direct done from a tab %s ends nothing", async (_, chars, reason) => {
    // Before: the stream ended on the done with "Lorem ipsum " (or no text) and the tab's usage.
    const { r, d, got, done } = started();
    d.delta(0, "Lorem ipsum ");
    d.done(chars, reason, { prompt_tokens: 0, completion_tokens: 999_999, total_tokens: 999_999 });
    await vi.waitFor(() => expect(got.text).toBe("Lorem ipsum "));
    await tick();
    expect(got.ended).toBe(false);
    r.send(chunk(JOB, "Lorem "), chunk(JOB, "ipsum "));
    r.finish("dolor sit amet.");
    expect(await done).toMatchObject({
      text: "Lorem ipsum dolor sit amet.",
      finish: "stop",
      usage: USAGE,
    });
  });

  it("takes direct text no further than DIRECT_WINDOW ahead of the relay", async () => {
    // Before: 4 MiB over the data channel reached a caller whose answer (max_tokens 1) was "ok".
    const r = relay();
    const d = feed();
    const big = "x".repeat(64 * 1024);
    for (let i = 0; i < 64; i++) d.delta(i * big.length, big);
    d.done(64 * big.length, "stop");
    const s = open(r.res, d.feed);
    const { done } = read(s);
    r.finish("ok", { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 });
    expect(await done).toMatchObject({ text: "ok", usage: { completion_tokens: 1 } });
    expect(s.stats.directStopped).toBe("too_far_ahead");

    // Pieces within the window are taken; the first past it stops the direct path.
    const r2 = relay();
    const d2 = feed();
    const answer = "ab".repeat(DIRECT_WINDOW.chars);
    const s2 = open(r2.res, d2.feed);
    const second = read(s2);
    const window = answer.slice(0, DIRECT_WINDOW.chars);
    for (let at = 0; at < window.length; at += 1024) d2.delta(at, answer.slice(at, at + 1024));
    await vi.waitFor(() => expect(second.got.text).toBe(window));
    d2.delta(window.length, "ab"); // past the window: the relay has nothing yet
    d2.delta(window.length + 2, "ab");
    r2.finish(answer);
    expect((await second.done).text).toBe(answer);
    expect(s2.stats).toMatchObject({
      directStopped: "too_far_ahead",
      diverged: false,
      firstBy: { direct: DIRECT_WINDOW.chars, relay: answer.length - DIRECT_WINDOW.chars },
    });
  });

  it("a hedged job: two tabs send text for one job, so the relay alone decides", async () => {
    const r = relay();
    const d = feed();
    // The losing tab's text arrives first, then the winner's on another channel, then the
    // loser's done(abort); the relay carries the winner's answer.
    d.delta(0, "Ipsum ", 1);
    d.delta(0, "Lorem ", 2);
    d.done(6, "abort", USAGE, 1);
    const s = open(r.res, d.feed);
    const { done } = read(s);
    d.delta(6, "ipsum ", 2);
    r.finish("Lorem ipsum dolor");
    expect((await done).text).toBe("Lorem ipsum dolor");
    expect(s.stats).toMatchObject({ directStopped: "two_tabs", firstBy: { direct: 0 } });
  });

  it("stops taking direct text once it disagrees with the relay; text handed out stays", async () => {
    const { r, d, s, got, done } = started();
    d.delta(0, "The cat");
    await vi.waitFor(() => expect(got.text).toBe("The cat"));
    r.send(chunk(JOB, "The dog"));
    await tick();
    d.delta(7, " sat on the mat"); // ignored now, though it would fit
    r.finish(" ran away");
    // "The cat" was handed out before the relay said "The dog": it cannot be taken back.
    expect((await done).text).toBe("The cat ran away");
    expect(s.stats).toMatchObject({ diverged: true, directStopped: "diverged" });
  });

  it("direct text past the relay's end is never handed out", async () => {
    const r = relay();
    const d = feed();
    const s = open(r.res, d.feed);
    const it = s[Symbol.asyncIterator]();
    r.send(chunk(JOB, "Hello"));
    expect((await it.next()).value?.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    // While the caller holds the opening chunk, the tab says more than the relay ever will.
    d.delta(0, "Hello world, and then some");
    r.finish(" world");
    await tick();
    expect(await rest(it)).toBe("Hello world");
    expect(s.stats).toMatchObject({ diverged: true, directStopped: "diverged" });
  });

  it("DIRECT_WINDOW covers one relay-light checkpoint window and the one in flight", () => {
    expect(DIRECT_WINDOW.chars).toBeGreaterThanOrEqual(2 * DEFAULT_CHECKPOINTS.maxChars);
    expect(DIRECT_WINDOW.pieces).toBeGreaterThanOrEqual(2 * DEFAULT_CHECKPOINTS.everyPieces);
  });
});

describe("Stream: the end", () => {
  it("a consumer holding a chunk while the rest and the end arrive still gets the rest", async () => {
    // Before: the end was read after the text, so text that came with it was never handed out
    // (relay only, too).
    const r = relay();
    const s = open(r.res, null);
    const it = s[Symbol.asyncIterator]();
    r.send(chunk(JOB, "Hello"));
    await it.next(); // the opening chunk; "Hello" is taken and waits to be handed out
    r.finish(" world");
    await tick();
    expect(await rest(it)).toBe("Hello world");
  });
});

describe("Stream: `after`", () => {
  it("opened with after > 0 (the caller has that much) yields the rest of the answer", async () => {
    // Before: the merger started at 0, so the relay's text after 5 waited for a gap forever.
    const resumed = sse([chunk(JOB, " world"), chunk(JOB, null, "stop"), usageChunk(), "[DONE]"]);
    const d = feed();
    d.delta(0, "Hello world!"); // the tab's direct text from the start: only what is new counts
    const s = new Stream<ChatCompletionChunk>({
      client: client([resumed]),
      shape: CHAT,
      params: { model: "m", stream: true },
      jobId: JOB,
      first: null,
      direct: null,
      after: 5,
    });
    expect((await read(s).done).text).toBe(" world");
  });
});
