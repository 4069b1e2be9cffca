import type { AdapterInfo, NodeState } from "../../shared/protocol/node-messages.js";
import type { Location } from "../../shared/geo/distance.js";
import type { RegionOffers } from "../../shared/scheduling/spillover.js";
import type { RegionStats, RegionStatsSummary } from "./region-stats.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TrustView } from "./tab-trust.js";
import type { TrustHealth } from "./trust-health.js";

/** Per-model capacity of one region, for GET /v1/models (field names are the public API's). */
export interface RegionSummary {
  models: Record<string, { nodes: number; idle: number }>;
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
}

/** A region's summary with its status part added (region-parts.ts wraps the Directory report). */
export function withStatus(
  tabs: TabRegistry,
  stats: RegionStats,
  centre: Location,
  health: () => TrustHealth | null = () => null,
) {
  return (summary: RegionSummary): RegionSummary => ({
    ...summary,
    status: {
      ...statusOf(tabs.all(), summary, stats.queuedByModel(), stats.summary(), centre),
      trust: health(),
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
    for (const model of tab.models) freeIn.set(model, Math.min(freeIn.get(model) ?? wait, wait));
  }
  const models: Record<string, ModelStatus> = {};
  for (const model of new Set([...Object.keys(summary.models), ...Object.keys(queued)])) {
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
  return { states, gpuClasses, places: [...places.values()], models, stats };
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

export function summarise(tabs: Iterable<TabRecord>): RegionSummary {
  const out: RegionSummary = { models: {}, nodes: 0, queued: 0 };
  for (const tab of tabs) {
    out.nodes += 1;
    for (const model of tab.models) {
      const entry = (out.models[model] ??= { nodes: 0, idle: 0 });
      entry.nodes += 1;
      if (tab.state === "idle" && !tab.jobId) entry.idle += 1;
    }
  }
  return out;
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
