import type { Location } from "../../shared/geo/distance.js";
import { locationFromCf, parseLocationHeader } from "../../shared/geo/location.js";
import type { AppEnv } from "../env.js";

/**
 * Where a request comes from. In production `request.cf` is the truth; the x-tabgrid-location
 * header (or ?loc= for WebSockets, which browsers cannot add headers to) is honoured only when
 * ALLOW_LOCATION_HEADER is "true", because locally `request.cf` is a fixed placeholder.
 */
export function requestLocation(request: Request, env: AppEnv): Location | null {
  if (env.ALLOW_LOCATION_HEADER === "true") {
    const fromHeader =
      parseLocationHeader(request.headers.get("x-tabgrid-location")) ??
      parseLocationHeader(new URL(request.url).searchParams.get("loc"));
    if (fromHeader) return fromHeader;
  }
  return locationFromCf((request as { cf?: unknown }).cf);
}
