import type { Location } from "../../shared/geo/distance.js";
import {
  REGION_HINTS,
  isRegionHint,
  nearestRegion,
  type RegionHint,
} from "../../shared/geo/regions.js";
import type { AppEnv } from "../env.js";
import type { RegionDurableObject } from "./region-do.js";
import { regionOfJobId } from "./job-request.js";
import { parseShard, shardName, type Shard } from "./shard-name.js";

/** Every location hint Region objects live in (one or more shards each: shard-name.ts). */
export const REGIONS = REGION_HINTS;
export type RegionName = RegionHint;

export function isRegion(name: string | null): name is RegionName {
  return !!name && isRegionHint(name);
}

/** Tabs join, and requests start at, the region nearest to them; unknown places use wnam. */
export function regionFor(loc: Location | null): RegionName {
  return loc ? nearestRegion(loc) : "wnam";
}

export type RegionStub = DurableObjectStub<RegionDurableObject>;

/** Shard 0 of a hint: the object named by the hint alone (the only one when not sharded). */
export function regionStub(env: AppEnv, region: RegionName): RegionStub {
  return shardStub(env, { hint: region, k: 0 });
}

/** The Region object of one shard, created in its hint's location. */
export function shardStub(env: AppEnv, shard: Shard): RegionStub {
  const id = env.REGION.idFromName(shardName(shard));
  return env.REGION.get(id, { locationHint: shard.hint as DurableObjectLocationHint });
}

/** The shard a job id names (null: not a job id of any Region object). */
export function shardOfJobId(id: string): Shard | null {
  return parseShard(regionOfJobId(id));
}
