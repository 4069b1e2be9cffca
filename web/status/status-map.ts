import { geoContains, geoEqualEarth, geoPath } from "d3-geo";
import { feature, mesh } from "topojson-client";
import type { Feature, FeatureCollection, Geometry } from "geojson";
import type { GeometryCollection, Topology } from "topojson-specification";
import atlas from "world-atlas/countries-110m.json";
import { TAB_STATES, type PlaceView, type TabState } from "./status-types.js";

/**
 * The world map: countries from Natural Earth (world-atlas, bundled with the page: no tile server,
 * no CDN), projected with d3-geo's Equal Earth into the SVG's 960×500 view box; connected tabs as
 * dots per 1° cell, sized by count and coloured by the state most of them are in. The same places
 * are listed as text (country where the cell falls inside one, and coordinates).
 */

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 960;
const HEIGHT = 500;

type Countries = FeatureCollection<Geometry, { name?: string }>;

const topology = atlas as unknown as Topology<{ countries: GeometryCollection<{ name?: string }> }>;
const countries = feature(topology, topology.objects.countries) as Countries;
const projection = geoEqualEarth().fitExtent(
  [
    [4, 4],
    [WIDTH - 4, HEIGHT - 4],
  ],
  { type: "Sphere" },
);
const path = geoPath(projection);

const STATE_WORDS: Record<TabState, string> = {
  idle: "idle",
  busy: "serving",
  loading: "loading a model",
  paused: "paused",
};

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: Record<string, string>,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** Draw the land and borders once. */
export function drawWorld(svg: SVGSVGElement): void {
  svg.append(
    el("path", { class: "land", d: path(countries) ?? "" }),
    el("path", {
      class: "borders",
      d: path(mesh(topology, topology.objects.countries, (a, b) => a !== b)) ?? "",
    }),
  );
}

/** The state most of a place's tabs are in (ties: serving first). */
export function mainState(place: PlaceView): TabState {
  let best: TabState = "idle";
  let most = -1;
  for (const state of ["busy", "idle", "loading", "paused"] as const) {
    const n = place.states[state] ?? 0;
    if (n > most) [best, most] = [state, n];
  }
  return best;
}

function countryAt(lon: number, lat: number): string | null {
  const hit = countries.features.find((f: Feature<Geometry, { name?: string }>) =>
    geoContains(f, [lon, lat]),
  );
  return hit?.properties?.name ?? null;
}

function coords(place: PlaceView): string {
  const ns = `${Math.abs(place.lat)}°${place.lat >= 0 ? "N" : "S"}`;
  const ew = `${Math.abs(place.lon)}°${place.lon >= 0 ? "E" : "W"}`;
  return `${ns} ${ew}`;
}

/** "Germany (50°N 9°E): 2 tabs — 1 idle, 1 serving". */
export function describePlace(place: PlaceView): string {
  const country = countryAt(place.lon, place.lat);
  const where = country ? `${country} (${coords(place)})` : `Near ${coords(place)}`;
  const parts = TAB_STATES.filter((s) => (place.states[s] ?? 0) > 0).map(
    (s) => `${place.states[s]} ${STATE_WORDS[s]}`,
  );
  return `${where}: ${place.tabs} tab${place.tabs === 1 ? "" : "s"} — ${parts.join(", ")}`;
}

/** Replace the dots and their text list with these places. */
export function drawPlaces(svg: SVGSVGElement, list: HTMLUListElement, places: PlaceView[]): void {
  svg.querySelector("g.places")?.remove();
  const group = el("g", { class: "places" });
  // Big clusters first, so small ones stay visible on top.
  const sorted = [...places].sort((a, b) => b.tabs - a.tabs);
  // Dots keep a readable size on a phone, where the 960-unit view box is drawn ~360 px wide.
  const scale = Math.min(2.5, Math.max(1, WIDTH / (svg.clientWidth || WIDTH)));
  for (const place of sorted) {
    const xy = projection([place.lon, place.lat]);
    if (!xy) continue;
    const dot = el("circle", {
      class: `place state-${mainState(place)}`,
      cx: xy[0].toFixed(1),
      cy: xy[1].toFixed(1),
      r: (scale * (4 + 3 * Math.sqrt(place.tabs))).toFixed(1),
      "data-lat": String(place.lat),
      "data-lon": String(place.lon),
      "data-tabs": String(place.tabs),
    });
    const title = el("title", {});
    title.textContent = describePlace(place);
    dot.append(title);
    group.append(dot);
  }
  svg.append(group);
  list.replaceChildren(
    ...(sorted.length
      ? sorted.map((p) =>
          Object.assign(document.createElement("li"), { textContent: describePlace(p) }),
        )
      : [Object.assign(document.createElement("li"), { textContent: "No tab is connected." })]),
  );
}

/** The legend: one swatch per state. */
export function drawLegend(list: HTMLUListElement): void {
  list.replaceChildren(
    ...TAB_STATES.map((state) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch state-${state}`;
      swatch.setAttribute("aria-hidden", "true");
      li.append(swatch, `mostly ${STATE_WORDS[state]}`);
      return li;
    }),
  );
}
