import { statusPollMs } from "../page/url-timings.js";
import { drawLegend, drawPlaces, drawWorld } from "./status-map.js";
import { hedgedText } from "./status-hedging.js";
import { renderVerification } from "./status-verification.js";
import type {
  ModelView,
  NetworkView,
  Quantiles,
  RegionView,
  StatsWindow,
  StatusData,
} from "./status-types.js";

/**
 * The public status page (/status): polls the status API every few seconds and redraws the
 * headline, the map's dots and the two tables. No framework: a few DOM functions. `?poll-ms=`
 * shortens the interval (tests; at least 500 ms, page/url-timings.ts).
 */

const POLL_MS = statusPollMs();
const WINDOW_WORDS: Record<StatsWindow, string> = {
  "5m": "last 5 minutes",
  "1h": "last hour",
  "1d": "last day",
};

const $ = <T extends Element>(selector: string) => document.querySelector<T>(selector)!;
const svg = $<SVGSVGElement>("#map");
let windowChoice: StatsWindow = "5m";
let last: StatusData | null = null;

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

async function load(): Promise<StatusData> {
  const [network, models, regions] = await Promise.all([
    getJson<NetworkView>("/v1/status"),
    getJson<{ data: ModelView[] }>("/v1/status/models"),
    getJson<{ data: RegionView[] }>("/v1/status/regions"),
  ]);
  return { network, models: models.data, regions: regions.data };
}

function cell(text: string, header = false): HTMLTableCellElement {
  const td = document.createElement(header ? "th" : "td");
  if (header) td.setAttribute("scope", "row");
  td.textContent = text;
  return td;
}

function row(cells: HTMLTableCellElement[]): HTMLTableRowElement {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const triple = (q: Quantiles | null, unit: string) =>
  q ? `${q.p50} / ${q.p95} / ${q.p99} ${unit}` : "—";

function wait(etaS: number | null): string {
  if (etaS === null) return "no tab";
  if (etaS === 0) return "none";
  return etaS < 90 ? `~${Math.round(etaS)} s` : `~${Math.round(etaS / 60)} min`;
}

function headline(n: NetworkView): string {
  if (n.tabs === 0)
    return "No tab is connected right now: requests cannot be served by the network.";
  const busy = n.states.busy;
  return (
    `${plural(n.tabs, "tab")} connected (${n.idle} idle, ${busy} serving) in ` +
    `${plural(n.regions, "region")}, serving ${plural(n.models, "model")}; ` +
    `${plural(n.queued, "request")} waiting. Last 5 minutes: ${plural(n.windows["5m"].requests, "request")}` +
    (n.windows["5m"].ttft_ms
      ? `, median time to first token ${n.windows["5m"].ttft_ms.p50} ms.`
      : ".")
  );
}

function renderModels(models: ModelView[]): void {
  const body = $<HTMLTableSectionElement>("#models-table tbody");
  body.replaceChildren(
    ...(models.length
      ? models.map((m) =>
          row([
            cell(m.id, true),
            cell(String(m.nodes)),
            cell(String(m.idle)),
            cell(String(m.queued)),
            cell(wait(m.eta_s)),
            cell(m.tokens_per_s === null ? "—" : String(m.tokens_per_s)),
          ]),
        )
      : [row([Object.assign(cell("No model is being served."), { colSpan: 6 })])]),
  );
}

function renderRegions(regions: RegionView[]): void {
  $("#regions-caption").textContent =
    `Per region, ${WINDOW_WORDS[windowChoice]}: time to first token (ms) and decode speed (tokens/s) at the 50th, 95th and 99th percentiles, and jobs hedged on a second tab`;
  const body = $<HTMLTableSectionElement>("#regions-table tbody");
  body.replaceChildren(
    ...(regions.length
      ? regions.map((r) => {
          const w = r.windows[windowChoice];
          return row([
            cell(r.region, true),
            cell(String(r.tabs)),
            cell(String(r.idle)),
            cell(String(r.queued)),
            cell(String(w.requests)),
            cell(triple(w.ttft_ms, "ms")),
            cell(triple(w.tokens_per_s, "tok/s")),
            cell(hedgedText(w)),
          ]);
        })
      : [row([Object.assign(cell("No region has reported yet."), { colSpan: 8 })])]),
  );
}

function render(data: StatusData): void {
  $("#headline").textContent = headline(data.network);
  $("#updated").textContent = data.network.updated_at
    ? `Figures as of ${new Date(data.network.updated_at).toLocaleTimeString()}.`
    : "";
  drawPlaces(svg, $<HTMLUListElement>("#places-list"), data.network.places);
  renderModels(data.models);
  renderRegions(data.regions);
  renderVerification(data.network.verification, data.regions);
  document.body.dataset.loaded = "true";
}

async function poll(): Promise<void> {
  try {
    last = await load();
    render(last);
  } catch (e) {
    $("#headline").textContent = `Could not read the network's status (${String(e)}); retrying.`;
  } finally {
    setTimeout(() => void poll(), POLL_MS);
  }
}

for (const button of document.querySelectorAll<HTMLButtonElement>(".window-choice button")) {
  button.addEventListener("click", () => {
    windowChoice = button.dataset.window as StatsWindow;
    for (const b of document.querySelectorAll(".window-choice button"))
      b.setAttribute("aria-pressed", String(b === button));
    if (last) renderRegions(last.regions);
  });
}

drawWorld(svg);
drawLegend($<HTMLUListElement>("#legend"));
void poll();
