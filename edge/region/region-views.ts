import type { AdapterInfo, NodeState } from "../../shared/protocol/node-messages.js";
import type { Location } from "../../shared/geo/distance.js";
import type { RegionOffers } from "../../shared/scheduling/spillover.js";
import type { RegionStats, RegionStatsSummary } from "./region-stats.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TrustView } from "./tab-trust.js";
import type { TrustHealth } from "./trust-health.js";
import { MAX_LISTED_OTHER_MODELS, namesLeftOut } from "../model-catalog.js";

/**
 * Per-model capacity of one region, for GET /v1/models (field names are the public API's).
 *
 * Its size is bounded whatever names tabs announce (`summarise`, `statusOf`): the Directory writes
 * it as one SQLite row, and Cloudflare refuses a row over 2 MB — a report that grew with every
 * name would fail (only logged) and freeze this region's routing row and public figures. It holds
 * the catalog models some tab here announces, at most MAX_REPORTED_OTHER_MODELS other names, and
 * at most as many names only waiting requests ask for. A tab's name is at most 200 UTF-16 units,
 * 1,202 bytes as JSON at worst (a control character or lone surrogate is 6 bytes escaped); a
 * client's at most 256 bytes (1,538 as JSON). Measured (region-views.test.ts), `models` and
 * `status` with 64 + 64 such names: 447,712 bytes. Besides: shard round trips (a reported name
 * again: ≤ 64 × 1.2 KB), offers (≤ MAX_OFFER_MODELS = 16 models × ~2 KB), places (≤ 300 × ~70 B),
 * conversation keys (~3.9 KB), and per catalog model served here ~0.5 KB (WebLLM's 163 ids are ≤ 45
 * characters; EXTRA_MODELS and hosted ids ≤ 200 ASCII characters, ~1.1 KB): under 1 MB with every
 * catalog model of a 200-model operator list served. Before the cap, 62 tabs (60 of them with 32
 * names of 200 3-byte characters) made a 3,585,766-byte row; with it, 132,308
 * (directory-report-size.test.ts).
 */
export interface RegionSummary {
  models: Record<string, { nodes: number; idle: number }>;
  /**
   * Names tabs here announce that `models` leaves out (none but the catalog's and the
   * MAX_REPORTED_OTHER_MODELS served by the most tabs are reported). Absent when none is.
   */
  otherModels?: number;
  nodes: number;
  /** Requests waiting for their first tab. */
  queued: number;
  /**
   * What a new request could get here, per model (shared/scheduling/spillover.ts): the Worker
   * compares it with the home region's own offer to spill over. Absent from older objects.
   */
  offers?: RegionOffers;
  /** For the status API and /metrics (absent in summaries from Region objects before it). */
  status?: RegionStatus;
}

/** What the status page and /metrics read of a region, besides the capacity above. */
export interface RegionStatus {
  /** Connected tabs by state. */
  states: Record<NodeState, number>;
  /** Connected tabs by the GPU class they reported ("unknown" when they sent none). */
  gpuClasses: Record<string, number>;
  /** Where the tabs are, counted per 1° cell (about 100 km): never a tab's own location. */
  places: StatusPlace[];
  /** Per model served here. */
  models: Record<string, ModelStatus>;
  /** Requests, TTFT and tokens/s over the last 5 minutes, hour and day (region-stats.ts). */
  stats: RegionStatsSummary;
  /** Verification health (trust-health.ts); null when verification is off, absent before it. */
  trust?: TrustHealth | null;
  /**
   * Changes decided here and not yet delivered to the credit ledger (edge/credits/ledger-outbox.ts);
   * null without a ledger, absent from Region objects before it. Above 0 for long: the ledger is
   * not answering.
   */
  ledgerWaiting?: number | null;
}

/** A region's summary with its status part added (region-parts.ts wraps the Directory report). */
export function withStatus(
  tabs: TabRegistry,
  stats: RegionStats,
  centre: Location,
  health: () => TrustHealth | null = () => null,
  ledgerWaiting: () => number | null = () => null,
) {
  return (summary: RegionSummary): RegionSummary => ({
    ...summary,
    status: {
      ...statusOf(tabs.all(), summary, stats.queuedByModel(), stats.summary(), centre),
      trust: health(),
      ledgerWaiting: ledgerWaiting(),
    },
  });
}

export interface StatusPlace {
  lat: number;
  lon: number;
  tabs: number;
  states: Partial<Record<NodeState, number>>;
}

export interface ModelStatus {
  nodes: number;
  idle: number;
  queued: number;
  /** Estimated wait for a new request, in seconds (null: no tab serves it). An estimate. */
  etaS: number | null;
  /** Decode speed served over the last hour, measured here (null: nothing served). */
  tokensPerS: number | null;
}

/** Places are capped so a region's report stays small whatever the spread of its tabs. */
const MAX_PLACES = 300;
/**
 * Most model names outside the catalog a region reports (and, apart, most names only waiting
 * requests ask for): as many as a listing shows (model-catalog.ts `listedModels`), so the
 * network-wide listing, which keeps the names served by the most tabs, loses nothing a region
 * would have told it about a popular name.
 */
export const MAX_REPORTED_OTHER_MODELS = MAX_LISTED_OTHER_MODELS;
/** Service time assumed for wait estimates before any job of the model has finished here. */
const DEFAULT_SERVICE_MS = 10_000;

/**
 * The status part of a region's summary: tab states and GPU classes, tabs per 1° cell (tabs
 * without a location count at the region's centre), and per model the queue, an estimated wait
 * (the soonest a serving tab is free, plus the queue ahead shared among the tabs, each job taking
 * the model's mean service time here) and the decode speed it was served at.
 */
export function statusOf(
  tabs: Iterable<TabRecord>,
  summary: RegionSummary,
  queued: Record<string, number>,
  stats: RegionStatsSummary,
  centre: Location,
  now = Date.now(),
): RegionStatus {
  const states: Record<NodeState, number> = { loading: 0, idle: 0, busy: 0, paused: 0 };
  const gpuClasses: Record<string, number> = {};
  const places = new Map<string, StatusPlace>();
  const freeIn = new Map<string, number>();
  for (const tab of tabs) {
    states[tab.state] += 1;
    const cls = tab.gpu?.class ?? "unknown";
    gpuClasses[cls] = (gpuClasses[cls] ?? 0) + 1;
    const lat = Math.round(tab.lat ?? centre.lat);
    const lon = Math.round(tab.lon ?? centre.lon);
    const key = `${lat},${lon}`;
    const place =
      places.get(key) ?? (places.size < MAX_PLACES ? { lat, lon, tabs: 0, states: {} } : null);
    if (place) {
      place.tabs += 1;
      place.states[tab.state] = (place.states[tab.state] ?? 0) + 1;
      places.set(key, place);
    }
    const wait = tab.state === "idle" && !tab.jobId ? 0 : Math.max(0, tab.busyUntil - now);
    for (const model of tab.models)
      if (model in summary.models) freeIn.set(model, Math.min(freeIn.get(model) ?? wait, wait));
  }
  // Names only requests wait for (no tab here reports them) are a client's words, as many as the
  // queue holds (QUEUE_CAPACITY): the longest queues are kept, so the row stays bounded however
  // the queue is configured.
  const waitingOnly = Object.entries(queued)
    .filter(([model]) => !(model in summary.models))
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .slice(0, MAX_REPORTED_OTHER_MODELS)
    .map(([model]) => model);
  const models: Record<string, ModelStatus> = {};
  for (const model of [...Object.keys(summary.models), ...waitingOnly]) {
    const { nodes, idle } = summary.models[model] ?? { nodes: 0, idle: 0 };
    const waiting = queued[model] ?? 0;
    const service = stats.models[model]?.meanServiceMs ?? DEFAULT_SERVICE_MS;
    const etaMs =
      nodes === 0
        ? null
        : idle > waiting
          ? 0
          : (freeIn.get(model) ?? service) + (waiting / nodes) * service;
    models[model] = {
      nodes,
      idle,
      queued: waiting,
      etaS: etaMs === null ? null : Math.round(etaMs / 100) / 10,
      tokensPerS: stats.models[model]?.tokensPerS ?? null,
    };
  }
  // Per-model speeds only of the models reported: the status API reads them for those alone, and
  // the hour's slots may hold up to 24 names a minute (region-stats.ts).
  const speeds = Object.fromEntries(Object.entries(stats.models).filter(([m]) => m in models));
  return {
    states,
    gpuClasses,
    places: [...places.values()],
    models,
    stats: { ...stats, models: speeds },
  };
}

/** A tab as GET /v1/nodes shows it: no identity secret, no socket. */
export interface TabListing {
  id: string;
  state: NodeState;
  models: string[];
  adapter: Pick<AdapterInfo, "vendor" | "architecture" | "description" | "shaderF16">;
  agent: string;
  connectedAt: string;
  jobsServed: number;
  /** Probation, trusted or quarantined, with the identity's finished jobs and faults. */
  trust: TrustView;
  /** Credit earned by the identity (its public key) across connections, as the coordinator counts it. */
  credits: number;
}

/**
 * The tabs' capacity per model, reporting every catalog model (`catalog`) some tab serves and, of
 * the other names, the MAX_REPORTED_OTHER_MODELS served by the most tabs (then by name); the rest
 * are counted in `otherModels`. A tab may announce any 32 names of its own: without the cap the
 * Directory's row grew by every distinct name (RegionSummary says why that breaks). The catalog's
 * models are never pushed out by made-up names however many tabs announce those, so routing
 * (region-client/shard-routing.ts) and the listings see them; a name left out is still served by
 * this region's own matching (routing then tries the hint's first shard, as for any name no
 * summary lists) and is only missing from the listings, which keep the most-served names too.
 */
export function summarise(
  tabs: Iterable<TabRecord>,
  catalog: (model: string) => boolean = () => false,
): RegionSummary {
  const all = new Map<string, { nodes: number; idle: number }>();
  let nodes = 0;
  for (const tab of tabs) {
    nodes += 1;
    for (const model of tab.models) {
      let entry = all.get(model);
      if (!entry) all.set(model, (entry = { nodes: 0, idle: 0 }));
      entry.nodes += 1;
      if (tab.state === "idle" && !tab.jobId) entry.idle += 1;
    }
  }
  const dropped = namesLeftOut(
    [...all].map(([id, { nodes: n }]) => ({ id, nodes: n })),
    catalog,
    MAX_REPORTED_OTHER_MODELS,
  );
  const models: RegionSummary["models"] = {};
  for (const [model, entry] of all) if (!dropped.has(model)) models[model] = entry;
  return { models, ...(dropped.size > 0 ? { otherModels: dropped.size } : {}), nodes, queued: 0 };
}

export function listingOf(tab: TabRecord, trust: TrustView, credits: number): TabListing {
  const { vendor, architecture, description, shaderF16 } = tab.adapter;
  return {
    id: tab.publicId,
    state: tab.state,
    models: tab.models,
    adapter: { vendor, architecture, description, shaderF16 },
    agent: tab.agent,
    connectedAt: new Date(tab.connectedAt).toISOString(),
    jobsServed: tab.jobsServed,
    trust,
    credits,
  };
}
