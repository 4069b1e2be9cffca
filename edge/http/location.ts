import type { AppEnv } from "../env.js";

export interface GeoPoint {
  lat: number;
  lon: number;
}

/** Parse "lat,lon" (the dev location header / ?loc= value); null when it is not a valid point. */
export function parseLatLon(value: string | null | undefined): GeoPoint | null {
  if (!value) return null;
  const parts = value.split(",");
  if (parts.length !== 2) return null;
  const lat = Number(parts[0]);
  const lon = Number(parts[1]);
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  if (lat < -90 || lat > 90 || lon < -180 || lon > 180) return null;
  return { lat, lon };
}

/**
 * Where a request comes from. In production `request.cf` is the truth; the x-tabgrid-location
 * header (or ?loc= for WebSockets, which browsers cannot add headers to) is honoured only when
 * ALLOW_LOCATION_HEADER is "true", because locally `request.cf` is a fixed placeholder.
 */
export function requestLocation(request: Request, env: AppEnv): GeoPoint | null {
  if (env.ALLOW_LOCATION_HEADER === "true") {
    const fromHeader =
      parseLatLon(request.headers.get("x-tabgrid-location")) ??
      parseLatLon(new URL(request.url).searchParams.get("loc"));
    if (fromHeader) return fromHeader;
  }
  const cf = (request as { cf?: { latitude?: string; longitude?: string } }).cf;
  if (cf?.latitude && cf.longitude) return parseLatLon(`${cf.latitude},${cf.longitude}`);
  return null;
}
