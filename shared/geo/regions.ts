import { haversineKm, type Location } from "./distance.js";

/**
 * Cloudflare Durable Object location hints. Tabgrid runs one Region Durable Object per hint; a
 * contributor joins the region nearest to it and a request goes first to the region nearest its
 * client, then spills over in order of distance.
 */
export const REGION_HINTS = [
  "wnam",
  "enam",
  "sam",
  "weur",
  "eeur",
  "apac",
  "oc",
  "afr",
  "me",
] as const;
export type RegionHint = (typeof REGION_HINTS)[number];

/**
 * One representative point per hint: a large Cloudflare data-centre city inside the area the hint
 * covers, where a Durable Object created with that hint is likely to live. They only decide which
 * region is "nearest"; precise placement is Cloudflare's choice.
 */
export const REGION_CENTRES: Readonly<Record<RegionHint, Location>> = {
  wnam: { lat: 37.34, lon: -121.89 }, // San Jose
  enam: { lat: 39.04, lon: -77.49 }, // Ashburn
  sam: { lat: -23.55, lon: -46.63 }, // São Paulo
  weur: { lat: 50.11, lon: 8.68 }, // Frankfurt
  eeur: { lat: 52.23, lon: 21.01 }, // Warsaw
  apac: { lat: 1.35, lon: 103.82 }, // Singapore
  oc: { lat: -33.87, lon: 151.21 }, // Sydney
  afr: { lat: -26.2, lon: 28.05 }, // Johannesburg
  me: { lat: 25.2, lon: 55.27 }, // Dubai
};

export function isRegionHint(value: string): value is RegionHint {
  return (REGION_HINTS as readonly string[]).includes(value);
}

export interface RegionDistance {
  region: RegionHint;
  distanceKm: number;
}

/**
 * Every region ordered nearest first: the home region, then the spillover order. Ties (equal
 * distance) keep the order of REGION_HINTS so the result is deterministic.
 */
export function regionsByDistance(loc: Location): RegionDistance[] {
  return REGION_HINTS.map((region) => ({
    region,
    distanceKm: haversineKm(loc, REGION_CENTRES[region]),
  })).sort(
    (a, b) =>
      a.distanceKm - b.distanceKm ||
      REGION_HINTS.indexOf(a.region) - REGION_HINTS.indexOf(b.region),
  );
}

/** The region a contributor at `loc` joins, and where a client at `loc` is routed first. */
export function nearestRegion(loc: Location): RegionHint {
  let best: RegionHint = REGION_HINTS[0];
  let bestKm = Infinity;
  for (const region of REGION_HINTS) {
    const km = haversineKm(loc, REGION_CENTRES[region]);
    if (km < bestKm) {
      best = region;
      bestKm = km;
    }
  }
  return best;
}
