import type { RegionDurableObject } from "./region/region-do.js";

/** Bindings and variables of the coordinator Worker (see wrangler.toml). */
export interface AppEnv {
  REGION: DurableObjectNamespace<RegionDurableObject>;
  ASSETS: Fetcher;
  /** "true" lets the x-tabgrid-location header / ?loc= query set locations (dev and tests only). */
  ALLOW_LOCATION_HEADER?: string;
  /** JSON array of extra WebLLM ModelRecords merged over the default catalog. */
  EXTRA_MODELS?: string;
  /** How often tabs send a status frame, in ms (default 15000). */
  STATUS_INTERVAL_MS?: string;
}

export type AppContext = { Bindings: AppEnv; Variables: { requestId: string } };
