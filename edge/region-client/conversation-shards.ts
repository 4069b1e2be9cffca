import type { RegionHint } from "../../shared/geo/regions.js";
import type { DirectorySnapshot, RoutingView } from "../directory/directory-do.js";
import { reportedKey } from "../region/shard-figures.js";
import { parseShard, shardName, type Shard } from "../region/shard-name.js";
import { shardsOf } from "./shard-routing.js";

/**
 * Which shards hold which conversations, from the truncated keys each shard reports with its
 * figures (region/shard-figures.ts). Keyed by the snapshot object, as hint-rows.ts groups rows:
 * an isolate hands every request the same cached view until its next read, so the map is built
 * once per read, not once per request; a weak key lets it go with its snapshot.
 */
const built = new WeakMap<DirectorySnapshot, ReadonlyMap<string, readonly Shard[]>>();

/**
 * Truncated conversation key → the shards reporting a tab that holds it (usually one; two after a
 * hedged turn finished on both tabs). Rows whose name is not a shard are left out.
 */
export function conversationShards(
  summaries: DirectorySnapshot,
): ReadonlyMap<string, readonly Shard[]> {
  const out = new Map<string, Shard[]>();
  for (const [name, row] of Object.entries(summaries)) {
    const keys = row.shard?.conversations;
    if (!keys?.length) continue;
    const shard = parseShard(name);
    if (!shard) continue;
    for (const key of keys) {
      const list = out.get(key);
      if (list) list.push(shard);
      else out.set(key, [shard]);
    }
  }
  return out;
}

function holdersOf(summaries: DirectorySnapshot, key: string): readonly Shard[] {
  let map = built.get(summaries);
  if (!map) built.set(summaries, (map = conversationShards(summaries)));
  return map.get(reportedKey(key)) ?? [];
}

/**
 * The shard of `hint` whose tab holds the conversation `key` extends, if one serves `model` (by
 * its last report): among several, the one with an idle tab for it, then the lower k. Null when
 * no shard of the hint's current layout reports the key, so the usual order stands.
 */
export function holderShard(
  view: RoutingView,
  hint: RegionHint,
  key: string,
  model: string,
  initial: number,
): Shard | null {
  const holders = holdersOf(view.summaries, key).filter((s) => s.hint === hint);
  if (holders.length === 0) return null;
  // A shard that reported before a split may no longer be one of the hint's shards.
  const current = new Set(shardsOf(view, hint, initial).map((s) => s.k));
  const serves = (s: Shard) => view.summaries[shardName(s)]?.models[model];
  const idle = (s: Shard) => ((serves(s)?.idle ?? 0) > 0 ? 1 : 0);
  const fits = holders
    .filter((s) => current.has(s.k) && (serves(s)?.nodes ?? 0) > 0)
    .sort((a, b) => idle(b) - idle(a) || a.k - b.k);
  return fits[0] ?? null;
}

/** `order` with the holder first (moved there if it was already in it). */
export function holderFirst(order: readonly Shard[], holder: Shard | null): Shard[] {
  if (!holder) return [...order];
  return [holder, ...order.filter((s) => s.hint !== holder.hint || s.k !== holder.k)];
}
