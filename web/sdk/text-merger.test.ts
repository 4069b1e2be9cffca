import { describe, expect, it } from "vitest";
import { DIRECT_WINDOW } from "../direct/client-receiver-types.js";
import { TextMerger } from "./text-merger.js";

describe("TextMerger", () => {
  it("merges two paths by offset without duplicating text, counting who was first", () => {
    const m = new TextMerger();
    m.offer(0, "Hello", "direct");
    m.offer(5, " world", "direct");
    m.offer(0, "Hello wo", "relay"); // late, overlapping
    expect(m.take()).toBe("Hello world");
    m.offer(8, "rld, again", "relay");
    expect(m.take()).toBe(", again");
    expect(m.firstBy).toEqual({ direct: 11, relay: 7 });
    expect(m.diverged).toBe(false);
  });

  it("parks pieces that arrive ahead of a gap until the gap is filled", () => {
    const m = new TextMerger();
    m.offer(8, "three", "direct");
    m.offer(4, "two ", "direct");
    expect(m.take()).toBe("");
    m.offer(0, "one ", "relay");
    expect(m.take()).toBe("one two three");
    expect(m.firstBy).toEqual({ relay: 4, direct: 9 });
  });

  it("flags paths that disagree; the relay's text replaces direct text not handed out yet", () => {
    const m = new TextMerger();
    m.offer(0, "abc", "direct");
    m.offer(0, "abX", "relay");
    expect(m.take()).toBe("abX");
    expect(m.diverged).toBe(true);
    expect(m.firstBy).toEqual({ direct: 0, relay: 3 });
  });

  it("keeps what it handed out when the relay disagrees later (it cannot be taken back)", () => {
    const m = new TextMerger();
    m.offer(0, "abc", "direct");
    expect(m.take()).toBe("abc");
    m.offer(3, "def", "direct");
    m.offer(0, "abXDEF", "relay");
    // "def" was not handed out: the relay's "DEF" takes its place; "abc" stays as it was.
    expect(m.take()).toBe("DEF");
    expect(m.diverged).toBe(true);
  });

  it("starts at `start`: the caller has that much already, earlier text is cut off", () => {
    const m = new TextMerger(5);
    m.offer(5, " world", "relay");
    m.offer(0, "Hello world!", "direct");
    expect(m.take()).toBe(" world!");
    expect(m.length).toBe(12);
    expect(m.diverged).toBe(false);
  });

  it("rewinds to an offset but never below what it handed out, nor drops parked pieces of the other path", () => {
    const m = new TextMerger();
    m.offer(0, "abc", "relay");
    m.offer(3, "def", "direct");
    expect(m.take()).toBe("abcdef");
    m.offer(6, "ghi", "direct");
    m.offer(20, "later", "relay");
    expect(m.rewind(3, "direct")).toBe(3); // only "ghi": "def" was handed out
    m.dropParked("direct");
    expect(m.firstBy).toEqual({ relay: 3, direct: 3 });
    m.offer(6, "GHIjklmnopqrst", "relay");
    expect(m.take()).toBe("GHIjklmnopqrstlater");
  });

  it("parks at most DIRECT_WINDOW pieces and characters ahead of a gap", () => {
    // The audit: 20,000 pieces of 1 KiB parked far ahead (~41 MB) were all kept.
    const byCount = new TextMerger();
    let taken = 0;
    for (let i = 0; i < 20_000; i++) if (byCount.offer(1e9 + i * 2, "y", "direct")) taken++;
    expect(taken).toBe(DIRECT_WINDOW.pieces);

    const byChars = new TextMerger();
    const piece = "y".repeat(1024);
    taken = 0;
    for (let i = 0; i < 20_000; i++) if (byChars.offer(1e9 + i * 2048, piece, "direct")) taken++;
    expect(taken).toBe(DIRECT_WINDOW.chars / 1024);
    // A longer piece at an offset already parked replaces it only if it fits too.
    expect(byChars.offer(1e9, piece + "y", "direct")).toBe(false);
    expect(byChars.offer(1e9, "y", "direct")).toBe(true);

    // In-order text goes on as before while pieces wait.
    for (let i = 0; i < 2000; i++) byChars.offer(i, "z", "relay");
    expect(byChars.take()).toBe("z".repeat(2000));
  });
});
