import type { Location } from "./distance.js";

/**
 * Where locations come from. In production `request.cf` carries latitude/longitude (as strings),
 * colo, country and continent. Locally `request.cf` is a fixed placeholder, so tests, the simulator
 * and demos send a development header "lat,lon" instead — honoured by the coordinator only when its
 * development variable enables it; this module only parses.
 */

function inRange(lat: number, lon: number): boolean {
  return (
    Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180
  );
}

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/**
 * Parses the development location header, e.g. "51.5074,-0.1278" (spaces around parts allowed).
 * Returns null for anything else: missing, extra parts, non-decimal text ("1e3", "0x10"), or
 * coordinates out of range — a bad header must never place a client somewhere arbitrary.
 */
export function parseLocationHeader(value: string | null | undefined): Location | null {
  if (value == null) return null;
  const parts = value.split(",");
  if (parts.length !== 2) return null;
  const [latText, lonText] = parts.map((p) => p.trim()) as [string, string];
  if (!DECIMAL.test(latText) || !DECIMAL.test(lonText)) return null;
  const lat = Number(latText);
  const lon = Number(lonText);
  return inRange(lat, lon) ? { lat, lon } : null;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function coordinate(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && DECIMAL.test(value.trim())) return Number(value);
  return NaN;
}

/**
 * Reads a Location from a `request.cf`-shaped object (latitude/longitude arrive as strings there).
 * Returns null when the coordinates are missing or invalid, e.g. the local placeholder without them.
 */
export function locationFromCf(cf: unknown): Location | null {
  if (typeof cf !== "object" || cf === null) return null;
  const record = cf as Record<string, unknown>;
  const lat = coordinate(record["latitude"]);
  const lon = coordinate(record["longitude"]);
  if (!inRange(lat, lon)) return null;
  const loc: Location = { lat, lon };
  const colo = optionalString(record["colo"]);
  const country = optionalString(record["country"]);
  const continent = optionalString(record["continent"]);
  if (colo) loc.colo = colo;
  if (country) loc.country = country;
  if (continent) loc.continent = continent;
  return loc;
}
