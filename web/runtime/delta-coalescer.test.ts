import { describe, expect, it } from "vitest";
import { DELTA_PIECE_CHARS, DeltaCoalescer, deltaPieces } from "./delta-coalescer.js";
import { ManualTimers } from "../../test/support/manual-timers.js";

function setup(opts: { maxChars?: number } = {}) {
  const timers = new ManualTimers();
  const frames: [string, number][] = [];
  const c = new DeltaCoalescer((text, seq) => frames.push([text, seq]), { timers, ...opts });
  return { timers, frames, c };
}

describe("DeltaCoalescer", () => {
  it("sends the first delta at once, then at most one frame per 50 ms", () => {
    const { timers, frames, c } = setup();
    c.push("Hel");
    expect(frames).toEqual([["Hel", 0]]);
    c.push("lo");
    timers.advance(10);
    c.push(", ");
    expect(frames).toHaveLength(1);
    timers.advance(40);
    expect(frames).toEqual([
      ["Hel", 0],
      ["lo, ", 1],
    ]);
  });

  it("keeps ~20 frames/s however fast tokens come", () => {
    const { timers, frames, c } = setup();
    for (let i = 0; i < 1000; i++) {
      c.push("x");
      timers.advance(1);
    }
    c.flush();
    expect(frames.length).toBeLessThanOrEqual(21);
    expect(frames.map(([t]) => t).join("")).toBe("x".repeat(1000));
    expect(frames.map(([, s]) => s)).toEqual(frames.map((_, i) => i));
  });

  it("flush sends the rest immediately and cancels the timer", () => {
    const { timers, frames, c } = setup();
    c.push("a");
    c.push("b");
    c.flush();
    expect(frames).toEqual([
      ["a", 0],
      ["b", 1],
    ]);
    expect(timers.pending).toBe(0);
    c.flush();
    expect(frames).toHaveLength(2);
  });

  it("sends a large buffer early and ignores empty deltas", () => {
    const { frames, c } = setup({ maxChars: 8 });
    c.push("a");
    c.push("");
    c.push("0123456789");
    expect(frames).toEqual([
      ["a", 0],
      ["0123456789", 1],
    ]);
  });

  it("discard drops buffered text", () => {
    const { timers, frames, c } = setup();
    c.push("a");
    c.push("b");
    c.discard();
    timers.advance(100);
    expect(frames).toEqual([["a", 0]]);
  });
});

describe("deltaPieces", () => {
  it("cuts text into pieces of at most the coalescer's size that join back to it", () => {
    const text = "x".repeat(2 * DELTA_PIECE_CHARS + 5);
    const pieces = deltaPieces(text);
    expect(pieces.map((p) => p.length)).toEqual([DELTA_PIECE_CHARS, DELTA_PIECE_CHARS, 5]);
    expect(pieces.join("")).toBe(text);
    expect(deltaPieces("")).toEqual([]);
  });

  it("never parts the two halves of a surrogate pair", () => {
    // "a😀b😀": the first cut at 2 would fall inside the first emoji.
    const pieces = deltaPieces("a😀b😀", 2);
    expect(pieces).toEqual(["a", "😀", "b", "😀"]);
  });
});
