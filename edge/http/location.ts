import type { Location } from "../../shared/geo/distance.js";
import { locationFromCf, parseLocationHeader } from "../../shared/geo/location.js";
import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";

/**
 * Where a request comes from. In production `request.cf` is the truth; the x-tabgrid-location
 * header (or ?loc= for WebSockets, which browsers cannot add headers to) is honoured only when
 * ALLOW_LOCATION_HEADER is "true", because locally `request.cf` is a fixed placeholder.
 */
export function requestLocation(request: Request, env: AppEnv): Location | null {
  if (readConfig(env).allowLocationHeader) {
    const fromHeader =
      parseLocationHeader(request.headers.get("x-tabgrid-location")) ??
      parseLocationHeader(new URL(request.url).searchParams.get("loc"));
    if (fromHeader) return fromHeader;
  }
  return locationFromCf((request as { cf?: unknown }).cf);
}

/**
 * "City, CC" for the contributor's dashboard, from `request.cf` (or the x-tabgrid-place header
 * where the location header is allowed); undefined when unknown.
 */
export function requestPlace(request: Request, env: AppEnv): string | undefined {
  if (readConfig(env).allowLocationHeader) {
    const given = request.headers.get("x-tabgrid-place")?.trim();
    if (given) return given.slice(0, 100);
  }
  const cf = (request as { cf?: { city?: unknown; country?: unknown } }).cf;
  const parts = [cf?.city, cf?.country].filter((p): p is string => typeof p === "string" && !!p);
  return parts.length ? parts.join(", ").slice(0, 100) : undefined;
}
