import { describe, expect, it, vi } from "vitest";
import type { TabMessage } from "../../shared/protocol/node-messages.js";
import { sha256Hex } from "../../shared/protocol/sha256.js";
import { contributorHarness, TINY_MODEL } from "../../test/support/contributor-harness.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { CheckpointBatcher } from "./checkpoints.js";
import type { DirectSender } from "./tab-sender.js";

describe("CheckpointBatcher", () => {
  function setup(opts: { everyPieces?: number; everyMs?: number; maxChars?: number } = {}) {
    const timers = new ManualTimers();
    const out: string[] = [];
    const b = new CheckpointBatcher((text) => out.push(text), { timers, ...opts });
    return { timers, out, b };
  }

  it("sends the first piece at once, then one batch per K pieces", () => {
    const { out, b } = setup({ everyPieces: 4 });
    b.push("a");
    expect(out).toEqual(["a"]);
    for (const p of ["b", "c", "d"]) b.push(p);
    expect(out).toEqual(["a"]);
    b.push("e");
    expect(out).toEqual(["a", "bcde"]);
  });

  it("sends a batch T ms after its first piece when tokens come slowly", () => {
    const { timers, out, b } = setup({ everyPieces: 100, everyMs: 1000 });
    b.push("a");
    b.push("b");
    timers.advance(999);
    b.push("c");
    expect(out).toEqual(["a"]);
    timers.advance(1);
    expect(out).toEqual(["a", "bc"]);
    b.flush();
    expect(out).toEqual(["a", "bc"]);
  });

  it("sends a large batch early and flushes the rest at the end", () => {
    const { out, b } = setup({ maxChars: 10 });
    b.push("first");
    b.push("0123456789");
    b.push("tail");
    b.flush();
    expect(out).toEqual(["first", "0123456789", "tail"]);
    expect(b.frames).toBe(3);
  });
});

/** A data channel that is open for the first `openFor` pieces (Infinity: the whole job). */
function fakeDirect(openFor: number): DirectSender & { pieces: string[] } {
  const pieces: string[] = [];
  return {
    pieces,
    open: () => ({
      get connected() {
        return pieces.length < openFor;
      },
      delta: (text) => void pieces.push(text),
      done: () => {},
      close: () => {},
    }),
  };
}

const LONG = Array.from({ length: 150 }, (_, i) => `w${i}`).join(" ");

async function serveDirectJob(opts: { protocol?: number; openFor?: number }) {
  const direct = fakeDirect(opts.openFor ?? Infinity);
  const h = contributorHarness({
    direct,
    ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
  });
  await h.connect();
  h.sockets.last.receive({
    type: "job.assign",
    job: {
      id: "job-d",
      model: TINY_MODEL.model_id,
      input: { kind: "chat", messages: [{ role: "user", content: LONG }] },
      sampling: { max_tokens: 500 },
      direct: { peerId: `tg-wnam-${"a".repeat(32)}` },
    },
    attempt: 1,
  });
  await vi.waitFor(() => expect(h.frames().some((f) => f.type === "job.done")).toBe(true));
  const text = h.frames().filter((f) => f.type === "job.delta" || f.type === "job.checkpoint");
  const done = h.frames().find((f) => f.type === "job.done");
  return { text, done, direct };
}

/** The frames' text in order, checking that each starts where the previous one ended. */
function contiguous(frames: TabMessage[]): string {
  let all = "";
  for (const f of frames) {
    if (f.type !== "job.delta" && f.type !== "job.checkpoint") continue;
    expect(f.offset).toBe(all.length);
    all += f.text;
  }
  return all;
}

describe("the tab runtime on a direct job", () => {
  it("sends checkpoints with the batch's hash while the channel is open", async () => {
    const { text, done, direct } = await serveDirectJob({});
    const answer = `You said: ${LONG}`;
    expect(direct.pieces.join("")).toBe(answer);
    expect(text.every((f) => f.type === "job.checkpoint")).toBe(true);
    for (const f of text) if (f.type === "job.checkpoint") expect(f.sha256).toBe(sha256Hex(f.text));
    expect(contiguous(text)).toBe(answer);
    // 152 pieces: the first at once, one batch of 128, the rest at the end.
    expect(text).toHaveLength(3);
    expect(done).toMatchObject({ chars: answer.length });
  });

  it("keeps sending job.delta to a coordinator older than protocol 7", async () => {
    const { text } = await serveDirectJob({ protocol: 6 });
    expect(text.length).toBeGreaterThan(0);
    expect(text.every((f) => f.type === "job.delta")).toBe(true);
    expect(contiguous(text)).toBe(`You said: ${LONG}`);
  });

  it("goes back to job.delta, in order, when the channel closes mid-answer", async () => {
    const { text } = await serveDirectJob({ openFor: 100 });
    const kinds = text.map((f) => f.type);
    expect(kinds[0]).toBe("job.checkpoint");
    expect(kinds.at(-1)).toBe("job.delta");
    // Never back to checkpoints once the channel is gone.
    expect(kinds.indexOf("job.delta")).toBeGreaterThan(kinds.lastIndexOf("job.checkpoint"));
    expect(contiguous(text)).toBe(`You said: ${LONG}`);
  });
});
