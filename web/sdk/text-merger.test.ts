import { describe, expect, it } from "vitest";
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

  it("flags paths that disagree about the same characters", () => {
    const m = new TextMerger();
    m.offer(0, "abc", "direct");
    m.offer(0, "abX", "relay");
    expect(m.take()).toBe("abc");
    expect(m.diverged).toBe(true);
  });
});
