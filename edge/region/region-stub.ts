import type { AppEnv } from "../env.js";
import type { GeoPoint } from "../http/location.js";
import type { RegionDurableObject } from "./region-do.js";

/**
 * Every location hint a Region object can live in. Until geo routing lands, every tab and request
 * is served by the first region; the list is what /v1/models and /v1/nodes fan out over.
 */
export const REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type RegionName = (typeof REGIONS)[number];

export function isRegion(name: string | null): name is RegionName {
  return !!name && (REGIONS as readonly string[]).includes(name);
}

export function regionFor(_loc: GeoPoint | null): RegionName {
  return "wnam";
}

export function regionStub(
  env: AppEnv,
  region: RegionName,
): DurableObjectStub<RegionDurableObject> {
  const id = env.REGION.idFromName(region);
  return env.REGION.get(id, { locationHint: region as DurableObjectLocationHint });
}
