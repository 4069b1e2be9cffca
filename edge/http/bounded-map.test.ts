import { describe, expect, it } from "vitest";
import { BoundedMap } from "./bounded-map.js";

describe("BoundedMap", () => {
  it("forgets the least recently stored entry past its bound; storing again refreshes an entry", () => {
    const m = new BoundedMap<string, number>(2);
    m.set("a", 1);
    m.set("b", 2);
    m.set("a", 3); // a is now the most recently stored
    m.set("c", 4); // b goes
    expect(m.get("b")).toBeUndefined();
    expect(m.get("a")).toBe(3);
    expect(m.get("c")).toBe(4);
    expect(m.size).toBe(2);
    m.delete("a");
    expect(m.get("a")).toBeUndefined();
    expect(m.size).toBe(1);
  });
});
