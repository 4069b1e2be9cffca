import { describe, expect, it } from "vitest";
import type { DirectorySnapshot, RoutingView } from "../directory/directory-do.js";
import { MAX_REPORTED_CONVERSATIONS, reportedKey, shardFigures } from "../region/shard-figures.js";
import type { TabRecord } from "../region/tab-registry.js";
import { conversationShards, holderFirst, holderShard } from "./conversation-shards.js";

type Row = DirectorySnapshot[string];

const KEY = "ab12cd34ef56" + "0".repeat(52);
const OTHER = "ffffffffffff" + "1".repeat(52);

const row = (models: Record<string, { nodes: number; idle: number }>, keys: string[]): Row => ({
  models,
  nodes: 1,
  queued: 0,
  updatedAt: 0,
  shard: { streams: 0, tabs: 1, bestRttMs: {}, conversations: keys.map(reportedKey) },
});

function view(summaries: DirectorySnapshot): RoutingView {
  return { summaries, shards: {} };
}

describe("conversation keys → shards", () => {
  it("groups every shard's reported keys once per view, and leaves out rows that are no shard", () => {
    const summaries: DirectorySnapshot = {
      wnam: row({ m: { nodes: 1, idle: 1 } }, [OTHER]),
      "wnam/1": row({ m: { nodes: 1, idle: 0 } }, [KEY]),
      "weur/2": row({ m: { nodes: 1, idle: 1 } }, [KEY]),
      "not a shard": row({ m: { nodes: 1, idle: 1 } }, [KEY]),
    };
    const map = conversationShards(summaries);
    expect(map.get(reportedKey(KEY))).toEqual([
      { hint: "wnam", k: 1 },
      { hint: "weur", k: 2 },
    ]);
    expect(map.get(reportedKey(OTHER))).toEqual([{ hint: "wnam", k: 0 }]);
    expect(map.size).toBe(2);
  });

  it("finds the holder among the hint's current shards that serve the model", () => {
    const v = view({
      wnam: row({ m: { nodes: 2, idle: 2 } }, []),
      "wnam/1": row({ m: { nodes: 1, idle: 0 }, x: { nodes: 1, idle: 1 } }, [KEY]),
    });
    // Held on shard 1, which serves `m` (its tab is busy: its own matching may queue behind it).
    expect(holderShard(v, "wnam", KEY, "m", 2)).toEqual({ hint: "wnam", k: 1 });
    // Another hint's shards are not this request's home.
    expect(holderShard(v, "weur", KEY, "m", 2)).toBeNull();
    // A shard that does not serve the model is not tried first: the usual order stands.
    expect(holderShard(v, "wnam", KEY, "y", 2)).toBeNull();
    // Nobody reports the key.
    expect(holderShard(v, "wnam", OTHER, "m", 2)).toBeNull();
    // A shard that is not in the hint's layout any more (one shard configured).
    expect(holderShard(v, "wnam", KEY, "m", 1)).toBeNull();
  });

  it("prefers a holder with an idle tab when two shards report the key", () => {
    const v = view({
      wnam: row({ m: { nodes: 1, idle: 0 } }, [KEY]),
      "wnam/1": row({ m: { nodes: 1, idle: 1 } }, [KEY]),
    });
    expect(holderShard(v, "wnam", KEY, "m", 2)).toEqual({ hint: "wnam", k: 1 });
  });

  it("puts the holder first and keeps the rest of the order", () => {
    const order = [0, 1, 2].map((k) => ({ hint: "wnam" as const, k }));
    expect(holderFirst(order, { hint: "wnam", k: 2 }).map((s) => s.k)).toEqual([2, 0, 1]);
    expect(holderFirst(order, { hint: "wnam", k: 5 }).map((s) => s.k)).toEqual([5, 0, 1, 2]);
    expect(holderFirst(order, null).map((s) => s.k)).toEqual([0, 1, 2]);
  });
});

describe("a shard's reported conversations", () => {
  const tab = (i: number, over: Partial<TabRecord> = {}): TabRecord =>
    ({
      tabId: `t${i}`,
      models: ["m"],
      state: "idle",
      jobId: null,
      rttMs: 10,
      lastAssignedAt: i,
      ...over,
    }) as TabRecord;

  it("truncates the keys, most recently assigned first, capped, skipping quarantined tabs", () => {
    const tabs = Array.from({ length: MAX_REPORTED_CONVERSATIONS + 10 }, (_, i) => tab(i));
    const key = (i: number) => i.toString(16).padStart(12, "0").padEnd(64, "a");
    const figures = shardFigures(
      tabs,
      (t) => t.tabId !== "t265",
      (t) => (t.tabId === "t1" ? null : key(Number(t.tabId.slice(1)))),
    );
    const reported = figures.conversations ?? [];
    expect(reported).toHaveLength(MAX_REPORTED_CONVERSATIONS);
    expect(reported.every((k) => k.length === 12)).toBe(true);
    // The newest serving tab (t264; t265 is quarantined) first; the oldest fall off the end.
    expect(reported[0]).toBe(reportedKey(key(264)));
    expect(reported.at(-1)).toBe(reportedKey(key(9)));
    expect(shardFigures([tab(0)], () => true).conversations).toBeUndefined();
  });
});
