import type { Location } from "../../shared/geo/distance.js";
import type { RegionHint } from "../../shared/geo/regions.js";
import type { DirectorySnapshot, RoutingView } from "../directory/directory-do.js";
import { routingView } from "../directory/directory-client.js";
import type { AppEnv } from "../env.js";
import { shardSettings } from "../region/shard-config.js";
import { evenLeaves, leafFor, shardHash, type ShardLeaf } from "../region/shard-map.js";
import { shardName, type Shard } from "../region/shard-name.js";
import { regionFor, shardStub, type RegionStub } from "../region/region-stub.js";
import { hintRows } from "./hint-rows.js";

/** The shards serving a hint: its stored layout, else REGION_SHARDS even shards. */
export function shardsOf(view: RoutingView, hint: RegionHint, initial: number): Shard[] {
  const leaves: ShardLeaf[] = view.shards[hint] ?? evenLeaves(initial);
  return leaves.map((l) => ({ hint, k: l.k }));
}

/**
 * The Region object a contributor's socket joins: the shard of its nearest hint that holds the
 * hash of its address (region/shard-map.ts says why the address). This is the Worker's one
 * "which Region stub for this tab" decision; anything that opens a tab's link calls it.
 */
export async function tabRegionStub(
  env: AppEnv,
  loc: Location | null,
  ip: string,
): Promise<{ shard: Shard; stub: RegionStub }> {
  const shard = await tabShard(env, regionFor(loc), ip);
  return { shard, stub: shardStub(env, shard) };
}

export async function tabShard(env: AppEnv, hint: RegionHint, ip: string): Promise<Shard> {
  const { initialShards } = shardSettings(env);
  const view = await routingView(env);
  const leaves = view.shards[hint] ?? evenLeaves(initialShards);
  if (leaves.length === 1) return { hint, k: leaves[0]?.k ?? 0 };
  return { hint, k: leafFor(leaves, shardHash(ip)).k };
}

type Row = DirectorySnapshot[string];

/** Idle tabs for `model` the shard last reported (0 when it reported none, or no row). */
export function idleOn(view: RoutingView, shard: Shard, model: string): number {
  return view.summaries[shardName(shard)]?.models[model]?.idle ?? 0;
}

/**
 * The order to try a hint's shards for a request for `model`: power of two choices among the
 * shards with an idle tab for it (two drawn at random, the one with the smaller best round trip,
 * then more idle tabs, goes first, the other second), then the rest of those by the same score;
 * then shards serving the model with no idle tab (least queued per tab first, where a busy tab may
 * still take the job to run next). A hint with one shard is simply that shard. Two random
 * choices rather than the global best keep Worker isolates holding the same second-old snapshot
 * from all sending their requests to one shard.
 */
export function shardOrder(
  view: RoutingView,
  hint: RegionHint,
  model: string,
  initial: number,
  random: () => number = Math.random,
): Shard[] {
  const shards = shardsOf(view, hint, initial);
  if (shards.length === 1) return shards;
  const row = (s: Shard): Row | undefined => view.summaries[shardName(s)];
  const idle = (s: Shard) => idleOn(view, s, model);
  const nodes = (s: Shard) => row(s)?.models[model]?.nodes ?? 0;
  const best = (s: Shard) => row(s)?.shard?.bestRttMs[model] ?? Infinity;
  const better = (a: Shard, b: Shard) => best(a) - best(b) || idle(b) - idle(a) || a.k - b.k;
  const withIdle = shards.filter((s) => idle(s) > 0).sort(better);
  if (withIdle.length >= 2) {
    const i = Math.floor(random() * withIdle.length);
    let j = Math.floor(random() * (withIdle.length - 1));
    if (j >= i) j += 1;
    const [a, b] = [withIdle[i] as Shard, withIdle[j] as Shard];
    const [first, second] = better(a, b) <= 0 ? [a, b] : [b, a];
    withIdle.splice(
      0,
      withIdle.length,
      first,
      second,
      ...withIdle.filter((s) => s !== a && s !== b),
    );
  }
  const load = (s: Shard) => (row(s)?.queued ?? 0) / Math.max(1, nodes(s));
  const busy = shards
    .filter((s) => idle(s) === 0 && nodes(s) > 0)
    .sort((a, b) => load(a) - load(b) || a.k - b.k);
  return [...withIdle, ...busy];
}

/** A hint's capacity for a model summed over its shards (for spillover between hints). */
export function hintCapacity(
  summaries: DirectorySnapshot,
  hint: RegionHint,
  model: string,
): { nodes: number; idle: number } {
  const out = { nodes: 0, idle: 0 };
  for (const row of hintRows(summaries, hint)) {
    out.nodes += row.models[model]?.nodes ?? 0;
    out.idle += row.models[model]?.idle ?? 0;
  }
  return out;
}

/** The shard a queued request waits in: the one with most tabs for the model per queued job. */
export function queueShard(
  view: RoutingView,
  hint: RegionHint,
  model: string,
  initial: number,
): Shard {
  const shards = shardsOf(view, hint, initial);
  const score = (s: Shard) => {
    const row = view.summaries[shardName(s)];
    return (row?.models[model]?.nodes ?? 0) / (1 + (row?.queued ?? 0));
  };
  return shards.reduce((a, b) => (score(b) > score(a) ? b : a), shards[0] as Shard);
}
