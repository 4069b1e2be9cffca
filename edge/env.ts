import type { Caller } from "./auth/authenticate.js";
import type { ClientDurableObject } from "./auth/client-do.js";
import type { SlotHold } from "./auth/client-slots.js";
import type { RegionDurableObject } from "./region/region-do.js";
import type { DirectoryDurableObject } from "./directory/directory-do.js";
import type { SignalDurableObject } from "./signal/signal-do.js";
import type { AlertEnv } from "./alerts/alert-config.js";
import type { LedgerDurableObject } from "./credits/ledger-do.js";
import type { ShardEnv } from "./region/shard-config.js";

/**
 * Bindings and variables of the coordinator Worker (see wrangler.toml). Variables are strings as
 * deployed; code reads them parsed and typed through `readConfig(env)` (config.ts), not from here.
 */
export interface AppEnv extends AlertEnv, ShardEnv {
  REGION: DurableObjectNamespace<RegionDurableObject>;
  CLIENT: DurableObjectNamespace<ClientDurableObject>;
  /** `global`: per-region summaries; `keys:<0-f>`: the key directory (directory/directory-do.ts). */
  DIRECTORY: DurableObjectNamespace<DirectoryDurableObject>;
  /** The credit ledger, one object named `global` (credits/ledger-do.ts, docs/credits.md). */
  LEDGER: DurableObjectNamespace<LedgerDurableObject>;
  /** Optional OpenAI-compatible upstream used when no tab can serve a request in time. */
  FALLBACK_URL?: string;
  FALLBACK_API_KEY?: string;
  /** Model name to ask the upstream for (default: the requested model). */
  FALLBACK_MODEL?: string;
  ASSETS: Fetcher;
  /** Files of self-hosted models, served under /v1/weights/ (edge/api/weights.ts). */
  WEIGHTS?: R2Bucket;
  /** PeerJS-compatible WebRTC signalling, one object per shard of peer ids (edge/signal). */
  SIGNAL: DurableObjectNamespace<SignalDurableObject>;
  /** JSON array of RTCIceServer (STUN/TURN) for the direct path, served at /v1/signal/ice. */
  ICE_SERVERS?: string;
  /** Key that signs issued peer ids (wrangler secret put SIGNAL_SECRET; docs/limits.md). */
  SIGNAL_SECRET?: string;
  /** "true" signs peer ids with a public development key when SIGNAL_SECRET is unset (local only). */
  SIGNAL_DEV_SECRET?: string;
  /** Signalling bounds: sockets per address, frame budget (edge/config.ts for defaults). */
  SIGNAL_MAX_PEERS_PER_IP?: string;
  SIGNAL_FRAMES_PER_SECOND?: string;
  SIGNAL_FRAME_BURST?: string;
  /** Secret guarding /v1/admin/* (wrangler secret put ADMIN_TOKEN; .dev.vars locally). */
  ADMIN_TOKEN?: string;
  /** "on" admits requests without a Tabgrid key, per address, with ANONYMOUS_* limits. */
  ANONYMOUS_TIER?: string;
  ANONYMOUS_RPM?: string;
  ANONYMOUS_CONCURRENT?: string;
  /** Latency tiers: interactive budget, prices and credit weights (edge/config.ts `credits`). */
  INTERACTIVE_BUDGET_MS?: string;
  CREDIT_PRICE_INTERACTIVE?: string;
  CREDIT_PRICE_BATCH?: string;
  CREDIT_WEIGHT_INTERACTIVE?: string;
  CREDIT_WEIGHT_BATCH?: string;
  /** "catalog" (default): only catalog models earn credit; "any": every model (tests only). */
  CREDIT_MODELS?: string;
  /** "true" lets the x-tabgrid-location header / ?loc= query set locations (dev and tests only). */
  ALLOW_LOCATION_HEADER?: string;
  /** JSON array of extra WebLLM ModelRecords merged over the default catalog. */
  EXTRA_MODELS?: string;
  /** Timings and limits of Region objects; see region/region-config.ts for meaning and defaults. */
  STATUS_INTERVAL_MS?: string;
  ACCEPT_MS?: string;
  LEASE_MS?: string;
  REDISPATCH_WAIT_MS?: string;
  JOB_TTL_MS?: string;
  MAX_NODES_PER_IP?: string;
  TAB_CONNECTS_PER_MIN?: string;
  MAX_ATTEMPTS?: string;
  QUEUE_CAPACITY?: string;
  QUEUE_WAIT_MS?: string;
  WAITING_MOVE_MS?: string;
  /** A response whose job stream is silent this long re-subscribes (survives object eviction). */
  STREAM_IDLE_MS?: string;
  /** SSE comment lines (`: keep-alive`) this often while a streamed job waits or prefills. */
  SSE_KEEPALIVE_MS?: string;
  /** How long an isolate reuses GET /v1/models and /v1/nodes (ms; "0": read each time). */
  LISTING_CACHE_MS?: string;
  /** Prefill rate (tokens/s) assumed for a tab never seen finishing a job, for its first lease. */
  PREFILL_UNSEEN_TPS?: string;
  /** Longest a tab may take from accept to its first token (plus the lease). */
  PREFILL_MAX_MS?: string;
}

export type AppContext = {
  Bindings: AppEnv;
  /** `slot`: the request's hold on its caller's concurrency slot (auth/client-slots.ts). */
  Variables: { requestId: string; caller: Caller; slot: SlotHold };
};
