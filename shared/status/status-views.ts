import type { NodeState } from "../protocol/node-messages.js";
import type { TopContributor } from "../credits/contributor-view.js";

/**
 * The public status API's bodies (docs/status.md): written by the coordinator (edge/api/status.ts)
 * and read by the status page (web/status/). Field names are snake_case like the rest of the API.
 */

export const STATS_WINDOWS = ["5m", "1h", "1d"] as const;
export type StatsWindow = (typeof STATS_WINDOWS)[number];

export interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface WindowView {
  requests: number;
  done: number;
  failed: number;
  cancelled: number;
  failed_over: number;
  /**
   * Hedged first tokens (docs/routing.md): jobs also started on a second tab, races that second
   * tab won, and the time losing tabs worked before they were cancelled (hedging's cost).
   */
  hedged: number;
  hedge_won: number;
  hedge_loser_ms: number;
  ttft_ms: Quantiles | null;
  tokens_per_s: Quantiles | null;
}

/**
 * Answer verification (docs/trust.md) as the regions count it: audits and canaries judged since
 * each region's verification began, and quarantines. Null where no region runs verification.
 */
export interface VerificationView {
  audits: { passed: number; failed: number };
  canaries: { passed: number; failed: number };
  /** Audits waiting for a verifier. */
  audits_pending: number;
  /** Connected tabs that are quarantined (they get no client jobs). */
  quarantined_tabs: number;
  /** Identities under quarantine, connected or not. */
  quarantined_identities: number;
}

export interface RegionView {
  region: string;
  tabs: number;
  idle: number;
  queued: number;
  states: Record<NodeState, number>;
  /** When the region last reported (ISO time). */
  updated_at: string;
  windows: Record<StatsWindow, WindowView>;
  verification: VerificationView | null;
}

export interface ModelView {
  id: string;
  nodes: number;
  idle: number;
  queued: number;
  /** Estimated wait for a new request, in seconds (the shortest of the regions serving it). */
  eta_s: number | null;
  /** Decode speed served over the last hour (tokens per second of generation). */
  tokens_per_s: number | null;
  regions: string[];
}

export interface PlaceView {
  lat: number;
  lon: number;
  tabs: number;
  states: Partial<Record<NodeState, number>>;
}

export interface NetworkView {
  object: "network.status";
  /** Connected tabs, and how many of them are idle, busy, loading, paused. */
  tabs: number;
  idle: number;
  states: Record<NodeState, number>;
  queued: number;
  /** Regions with at least one connected tab; models served by at least one tab. */
  regions: number;
  models: number;
  /** Tabs per 1° cell (about 100 km), never a tab's own location. */
  places: PlaceView[];
  windows: Record<StatsWindow, WindowView>;
  /** Summed over the regions that run verification; null when none does. */
  verification: VerificationView | null;
  updated_at: string | null;
  /** Most credit earned first (docs/credits.md); empty when the ledger cannot be read. */
  top_contributors?: TopContributor[];
}
