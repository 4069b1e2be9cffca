import type { ModelView, NetworkView, RegionView } from "../../shared/status/status-views.js";
import type { NodeState } from "../../shared/protocol/node-messages.js";

/** The public status API as the page reads it: the bodies are shared/status/status-views.ts. */
export type {
  ModelView,
  NetworkView,
  PlaceView,
  Quantiles,
  RegionView,
  StatsWindow,
  VerificationView,
  WindowView,
} from "../../shared/status/status-views.js";
export type TabState = NodeState;
export const TAB_STATES: readonly TabState[] = ["idle", "busy", "loading", "paused"];
export interface StatusData {
  network: NetworkView;
  models: ModelView[];
  regions: RegionView[];
}
