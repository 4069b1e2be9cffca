import { MAX_SHARDS_PER_HINT } from "./shard-name.js";
import { hash32 } from "../../shared/hash/hash32.js";

/**
 * How a location hint's tabs are spread over its shards: a binary trie over a stable 32-bit hash
 * of the tab's connecting address. A leaf `{ k, depth }` holds the keys with
 * `hash mod 2^depth === k`. Splitting leaf k at depth d keeps the keys with bit d clear in object
 * k (now at depth d + 1) and gives the others to a new object k + 2^d, so only the split shard's
 * tabs move, half of them, and every object keeps its name for life.
 *
 * The key is the address key (`cf-connecting-ip`, an IPv6 address by its /64: edge/http/address-key.ts) rather than the tab's identity because the Worker
 * must choose the object before the socket says hello, and because it keeps the per-address
 * connection limit (MAX_NODES_PER_IP) exact: all sockets of one address meet in one object.
 */
export interface ShardLeaf {
  k: number;
  depth: number;
}

/** FNV-1a, 32-bit: stable across isolates and deploys, cheap, and spreads short strings well. */
export function shardHash(key: string): number {
  return hash32(key);
}

/** `count` shards of equal share (count is rounded down to a power of two, 1..256). */
export function evenLeaves(count: number): ShardLeaf[] {
  const n = Math.max(1, Math.min(MAX_SHARDS_PER_HINT, Math.floor(count)));
  const depth = Math.floor(Math.log2(n));
  return Array.from({ length: 2 ** depth }, (_, k) => ({ k, depth }));
}

/** The leaf holding `hash` (leaves must cover every key, as evenLeaves and splitLeaf keep them). */
export function leafFor(leaves: readonly ShardLeaf[], hash: number): ShardLeaf {
  for (const leaf of leaves) if (hash % 2 ** leaf.depth === leaf.k) return leaf;
  // Unreachable for a well-formed map; shard 0 always exists as a safe default.
  return leaves.find((l) => l.k === 0) ?? { k: 0, depth: 0 };
}

/** The leaves after splitting leaf `k`; unchanged when k is unknown or a split would pass the cap. */
export function splitLeaf(leaves: readonly ShardLeaf[], k: number): ShardLeaf[] {
  const leaf = leaves.find((l) => l.k === k);
  if (!leaf || k + 2 ** leaf.depth >= MAX_SHARDS_PER_HINT) return [...leaves];
  const depth = leaf.depth + 1;
  return [...leaves.filter((l) => l.k !== k), { k, depth }, { k: k + 2 ** leaf.depth, depth }].sort(
    (a, b) => a.k - b.k,
  );
}
