/**
 * The distance model the scheduler reasons with: great-circle distance between two points, turned
 * into a network round trip.
 *
 * Why 48 km per ms of round trip: light in fibre covers about 200 km per ms one way (100 km per ms
 * of round trip), but real paths are not straight lines — routes follow cables, pass through
 * exchanges and add queueing. Measurements of real internet round trips against great-circle
 * distance find an inflation of roughly 2× over the fibre speed-of-light bound, i.e. about 48 km of
 * great-circle distance per millisecond of round trip. That is a typical figure, not a guarantee, so
 * the scheduler corrects it per tab from what it observes (see shared/scheduling/speed-tracker.ts).
 */

/** Mean Earth radius (IUGG), km. */
export const EARTH_RADIUS_KM = 6371.0088;

/** Great-circle km per millisecond of round-trip time on real internet paths (see above). */
export const FIBRE_KM_PER_MS_RTT = 48;

/** A point on Earth; colo/country/continent are carried along from `request.cf` when known. */
export interface Location {
  /** Degrees, −90…90. */
  lat: number;
  /** Degrees, −180…180. */
  lon: number;
  /** Cloudflare data centre (IATA code) that saw the connection. */
  colo?: string;
  /** ISO 3166-1 alpha-2. */
  country?: string;
  /** Two-letter continent code as in `request.cf.continent`. */
  continent?: string;
}

const RAD = Math.PI / 180;

/** Haversine great-circle distance in km; stable for both tiny and antipodal separations. */
export function haversineKm(a: Location, b: Location): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const s1 = Math.sin(dLat / 2);
  const s2 = Math.sin(dLon / 2);
  const h = s1 * s1 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * s2 * s2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * Expected round trip over `distanceKm` of great-circle distance, plus the fixed access delay of the
 * endpoints (last-mile, Wi-Fi, mobile radio), which does not shrink with distance.
 */
export function networkRttMs(distanceKm: number, accessDelayMs: number): number {
  return distanceKm / FIBRE_KM_PER_MS_RTT + accessDelayMs;
}
