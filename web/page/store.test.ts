import { describe, expect, it } from "vitest";
import { createStore } from "./store.js";

describe("createStore", () => {
  it("applies typed patches and tells subscribers which fields changed", () => {
    const store = createStore({ count: 0, label: "a" as string, items: [] as number[] });
    const seen: [number, string[]][] = [];
    const stop = store.subscribe((s, changed) => seen.push([s.count, [...changed].map(String)]));
    store.update({ count: 1 });
    store.update({ count: 1, label: "a" }); // nothing changed: no notification
    store.update({ label: "b", count: 2 });
    expect(store.state).toMatchObject({ count: 2, label: "b" });
    expect(seen).toEqual([
      [1, ["count"]],
      [2, ["label", "count"]],
    ]);
    stop();
    store.update({ count: 3 });
    expect(seen).toHaveLength(2);
  });

  it("replaces the state object on update, so a read snapshot never changes under the reader", () => {
    const store = createStore({ n: 0 });
    const before = store.state;
    store.update({ n: 1 });
    expect(before.n).toBe(0);
    expect(store.state.n).toBe(1);
  });
});
