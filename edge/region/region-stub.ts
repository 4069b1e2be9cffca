import type { Location } from "../../shared/geo/distance.js";
import {
  REGION_HINTS,
  isRegionHint,
  nearestRegion,
  type RegionHint,
} from "../../shared/geo/regions.js";
import type { AppEnv } from "../env.js";
import type { RegionDurableObject } from "./region-do.js";

/** Every location hint a Region object can live in (one object per hint). */
export const REGIONS = REGION_HINTS;
export type RegionName = RegionHint;

export function isRegion(name: string | null): name is RegionName {
  return !!name && isRegionHint(name);
}

/** Tabs join, and requests start at, the region nearest to them; unknown places use wnam. */
export function regionFor(loc: Location | null): RegionName {
  return loc ? nearestRegion(loc) : "wnam";
}

export function regionStub(
  env: AppEnv,
  region: RegionName,
): DurableObjectStub<RegionDurableObject> {
  const id = env.REGION.idFromName(region);
  return env.REGION.get(id, { locationHint: region as DurableObjectLocationHint });
}
