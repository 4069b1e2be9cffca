/**
 * The public status API as the page reads it (docs/status.md; the coordinator's side is
 * edge/api/status.ts). Kept here rather than imported, because web/ is type-checked without the
 * Workers types the edge code needs.
 */
export type TabState = "loading" | "idle" | "busy" | "paused";
export const TAB_STATES: readonly TabState[] = ["idle", "busy", "loading", "paused"];
export type StatsWindow = "5m" | "1h" | "1d";

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
  ttft_ms: Quantiles | null;
  tokens_per_s: Quantiles | null;
}

export interface PlaceView {
  lat: number;
  lon: number;
  tabs: number;
  states: Partial<Record<TabState, number>>;
}

export interface NetworkView {
  object: "network.status";
  tabs: number;
  idle: number;
  states: Record<TabState, number>;
  queued: number;
  regions: number;
  models: number;
  places: PlaceView[];
  windows: Record<StatsWindow, WindowView>;
  updated_at: string | null;
}

export interface ModelView {
  id: string;
  nodes: number;
  idle: number;
  queued: number;
  eta_s: number | null;
  tokens_per_s: number | null;
  regions: string[];
}

export interface RegionView {
  region: string;
  tabs: number;
  idle: number;
  queued: number;
  states: Record<TabState, number>;
  updated_at: string;
  windows: Record<StatsWindow, WindowView>;
}

export interface StatusData {
  network: NetworkView;
  models: ModelView[];
  regions: RegionView[];
}
