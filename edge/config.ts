import { z } from "zod";
import { IceConfigSchema, type IceConfig } from "../shared/protocol/peerjs-messages.js";
import type { AppEnv } from "./env.js";
import { log } from "./http/log.js";
import { DEFAULT_PEER_ID_TTL_MS } from "./signal/peer-ids.js";
import { WAITING_MOVE_INTERVAL_MS } from "../shared/scheduling/spillover.js";

/**
 * The coordinator's configuration: every variable of wrangler.toml's [vars] (and secrets) parsed
 * once per `env` object with zod, typed, with its default. An unset or empty variable takes the
 * default silently; an invalid one takes the default too (as before this module existed) and logs
 * one warning naming the variable, so a typo in a deploy is visible without taking the API down.
 *
 *   readConfig(env).region.leaseMs      — Region timings and limits (region/region-config.ts)
 *   readConfig(env).anonymous           — the keyless tier (auth/authenticate.ts)
 *   readConfig(env).allowLocationHeader — dev-only location override (http/location.ts)
 *   readConfig(env).streamIdleMs        — silence before a response re-subscribes to its job
 *   readConfig(env).sseKeepAliveMs      — SSE comment lines while a job waits or prefills
 *   readConfig(env).iceServers          — STUN/TURN for the direct path (signal/signal-routes.ts)
 *   readConfig(env).signal              — peer-id key and per-address/per-socket limits (signal/)
 *   readConfig(env).credits             — latency tiers' prices and credit weights (credits/)
 *   readConfig(env).adminToken / .fallback
 *
 * Limits and their defaults are listed in docs/limits.md.
 */
export interface Config {
  region: {
    /** Tabs ping every half interval; 1.5 intervals of silence mark a tab gone (detected < 2). */
    statusIntervalMs: number;
    /** A tab must accept an assigned job within this time. */
    acceptMs: number;
    /** A streaming job whose tab sends nothing for this long is moved to another tab. */
    leaseMs: number;
    /** Prefill rate assumed for a tab the region has not yet seen finish a job (tokens/s). */
    prefillUnseenTps: number;
    /** A tab may take at most this long (plus the lease) from accept to its first token. */
    prefillMaxMs: number;
    /** How long a job that lost its tab waits for another one before failing. */
    redispatchWaitMs: number;
    /** Finished jobs (and their text) are kept this long for GET /v1/jobs/:id and resume. */
    jobTtlMs: number;
    /** Total attempts (first tab + replacements) before a job fails. */
    maxAttempts: number;
    /** Contributor sockets allowed from one IP address in one region. */
    maxNodesPerIp: number;
    /** Contributor sockets one IP address may open per minute in one region (tab-connects.ts). */
    tabConnectsPerMinute: number;
    /** Requests that may wait for a tab in this region; beyond it clients get 429. */
    queueCapacity: number;
    /** How long a request waits in the queue before it gets 503. */
    queueWaitMs: number;
    /** A socket that has not said `hello` this long after the upgrade is closed (4010). */
    helloDeadlineMs: number;
    /** How often a non-empty waiting line is looked at for jobs another object starts sooner. */
    waitingMoveMs: number;
    /** Per-socket frame budget (token bucket) of a tab; running it dry closes with 4009. */
    tabFramesPerSecond: number;
    tabFrameBurst: number;
    /** Finished jobs before a new identity leaves probation. */
    probationJobs: number;
    /** Share of new requests tabs on probation may take while a trusted tab could (0–1). */
    probationShare: number;
    /** Storage budget of one Region object: bytes of jobs and logs, and job records (storage-budget.ts). */
    storageMaxBytes: number;
    storageMaxJobs: number;
  };
  anonymous: { on: boolean; rpm: number; concurrent: number };
  /**
   * The latency tiers' price table (docs/credits.md). A key asks for a tier with the
   * `x-tabgrid-tier` header; with enough linked credit its waiting requests go ahead of the base
   * tier's and it pays `price` credits per completion token delivered. Tabs earn `weight` credits
   * per completion token, by the tier they delivered.
   */
  credits: {
    /** Time to first token an `interactive` request asks for when it names no budget of its own. */
    interactiveBudgetMs: number;
    /** Credits per completion token a key pays for a request that used the tier's place. */
    price: { interactive: number; batch: number };
    /**
     * Credits per completion token a tab earns: interactive = a job that paid for the interactive
     * tier's place and whose latency budget the tab met; batch = any other.
     */
    weight: { interactive: number; batch: number };
    /**
     * Which models earn credit (CREDIT_MODELS): "catalog", only the models of the catalog this
     * coordinator serves (credits/credited-models.ts); "any", every model a tab announces — for
     * the workerd tests, whose scripted tabs serve made-up names. Never "any" in production.
     */
    models: "catalog" | "any";
  };
  allowLocationHeader: boolean;
  streamIdleMs: number;
  /** SSE comment lines while a streamed job waits or prefills (SSE_KEEPALIVE_MS). */
  sseKeepAliveMs: number;
  /** How long an isolate reuses GET /v1/models and /v1/nodes (LISTING_CACHE_MS; 0: not at all). */
  listingCacheMs: number;
  iceServers: IceConfig;
  signal: {
    /**
     * Key that signs peer ids (SIGNAL_SECRET). Null: no ids are issued and no peer connects (503),
     * unless a development coordinator (SIGNAL_DEV_SECRET or ALLOW_LOCATION_HEADER "true") uses the
     * public DEV_SIGNAL_SECRET.
     */
    secret: string | null;
    /** Signalling sockets one address may hold in one Signal object (SIGNAL_MAX_PEERS_PER_IP). */
    maxPeersPerIp: number;
    /** Frame budget of one signalling socket: refill per second and bucket size. */
    framesPerSecond: number;
    frameBurst: number;
    /** How long an issued peer id may open a signalling socket (SIGNAL_PEER_ID_TTL_MS). */
    peerIdTtlMs: number;
  };
  /** Null: the admin API is disabled. */
  adminToken: string | null;
  /** Null: no cloud fallback. */
  fallback: { url: string; apiKey: string | null; model: string | null } | null;
}

const positive = z.coerce.number().finite().positive();
const positiveInt = z.coerce.number().int().positive();
const nonEmpty = z.string().min(1);
const iceServers = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "not JSON" });
      return z.NEVER;
    }
  })
  .pipe(IceConfigSchema.shape.iceServers);

/** Each variable's schema; the description is what the warning says the value should be. */
const VARS = {
  STATUS_INTERVAL_MS: positive,
  ACCEPT_MS: positive,
  LEASE_MS: positive,
  PREFILL_UNSEEN_TPS: positive,
  PREFILL_MAX_MS: positive,
  REDISPATCH_WAIT_MS: positive,
  JOB_TTL_MS: positive,
  MAX_ATTEMPTS: positive,
  MAX_NODES_PER_IP: positive,
  TAB_CONNECTS_PER_MIN: positiveInt,
  QUEUE_CAPACITY: positive,
  QUEUE_WAIT_MS: positive,
  HELLO_DEADLINE_MS: positive,
  WAITING_MOVE_MS: positive,
  TAB_FRAMES_PER_S: positive,
  TAB_FRAME_BURST: positiveInt,
  PROBATION_JOBS: z.coerce.number().int().nonnegative(),
  PROBATION_SHARE: z.coerce.number().min(0).max(1),
  REGION_STORAGE_BYTES: positiveInt,
  REGION_MAX_JOBS: positiveInt,
  STREAM_IDLE_MS: positive,
  SSE_KEEPALIVE_MS: positive,
  LISTING_CACHE_MS: z.coerce.number().int().nonnegative(),
  ANONYMOUS_TIER: z.enum(["on", "off"]),
  INTERACTIVE_BUDGET_MS: positiveInt,
  CREDIT_PRICE_INTERACTIVE: z.coerce.number().finite().nonnegative(),
  CREDIT_PRICE_BATCH: z.coerce.number().finite().nonnegative(),
  CREDIT_WEIGHT_INTERACTIVE: z.coerce.number().finite().nonnegative(),
  CREDIT_WEIGHT_BATCH: z.coerce.number().finite().nonnegative(),
  CREDIT_MODELS: z.enum(["catalog", "any"]),
  ANONYMOUS_RPM: positiveInt,
  ANONYMOUS_CONCURRENT: positiveInt,
  ALLOW_LOCATION_HEADER: z.enum(["true", "false"]),
  ICE_SERVERS: iceServers,
  SIGNAL_SECRET: z.string().min(16, "at least 16 characters"),
  SIGNAL_DEV_SECRET: z.enum(["true", "false"]),
  SIGNAL_MAX_PEERS_PER_IP: positiveInt,
  SIGNAL_FRAMES_PER_SECOND: positive,
  SIGNAL_FRAME_BURST: positiveInt,
  SIGNAL_PEER_ID_TTL_MS: positiveInt,
  ADMIN_TOKEN: nonEmpty,
  FALLBACK_URL: z.url(),
  FALLBACK_API_KEY: nonEmpty,
  FALLBACK_MODEL: nonEmpty,
} as const;
type Vars = { [K in keyof typeof VARS]?: z.output<(typeof VARS)[K]> };

/**
 * The peer-id signing key of development coordinators (tests, `npm start`): public, so anyone can
 * forge ids with it. Used only when SIGNAL_SECRET is unset and a development variable says so.
 */
export const DEV_SIGNAL_SECRET = "tabgrid-development-signal-key (public: never in production)";

/** Values never written to logs. */
const SECRETS: ReadonlySet<string> = new Set(["ADMIN_TOKEN", "FALLBACK_API_KEY", "SIGNAL_SECRET"]);

/** Parse every known variable; invalid ones are dropped (→ default) with one warning each. */
export function parseVars(env: Partial<Record<keyof typeof VARS, unknown>>): {
  vars: Vars;
  warnings: string[];
} {
  const vars: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (const [name, schema] of Object.entries(VARS)) {
    const raw = env[name as keyof typeof VARS];
    if (raw === undefined || raw === null || raw === "") continue;
    const parsed = schema.safeParse(raw);
    if (parsed.success) {
      vars[name] = parsed.data;
      continue;
    }
    const shown = SECRETS.has(name) ? "(secret)" : JSON.stringify(raw).slice(0, 80);
    const why = parsed.error.issues[0]?.message ?? "invalid";
    warnings.push(`${name}=${shown} is invalid (${why}); using the default`);
  }
  return { vars: vars as Vars, warnings };
}

function build(v: Vars): Config {
  return {
    region: {
      statusIntervalMs: v.STATUS_INTERVAL_MS ?? 15_000,
      acceptMs: v.ACCEPT_MS ?? 10_000,
      leaseMs: v.LEASE_MS ?? 30_000,
      // A conservative rate for tabs never observed: SwiftShader prefills ~0.4-0.5 tokens/s.
      prefillUnseenTps: v.PREFILL_UNSEEN_TPS ?? 0.25,
      prefillMaxMs: v.PREFILL_MAX_MS ?? 900_000,
      redispatchWaitMs: v.REDISPATCH_WAIT_MS ?? 30_000,
      jobTtlMs: v.JOB_TTL_MS ?? 3_600_000,
      // MAX_ATTEMPTS=1 switches failover off (the churn benchmark's baseline).
      maxAttempts: v.MAX_ATTEMPTS ?? 3,
      maxNodesPerIp: v.MAX_NODES_PER_IP ?? 8,
      tabConnectsPerMinute: v.TAB_CONNECTS_PER_MIN ?? 60,
      queueCapacity: v.QUEUE_CAPACITY ?? 100,
      queueWaitMs: v.QUEUE_WAIT_MS ?? 30_000,
      helloDeadlineMs: v.HELLO_DEADLINE_MS ?? 10_000,
      waitingMoveMs: v.WAITING_MOVE_MS ?? WAITING_MOVE_INTERVAL_MS,
      tabFramesPerSecond: v.TAB_FRAMES_PER_S ?? 200,
      tabFrameBurst: v.TAB_FRAME_BURST ?? 1_000,
      probationJobs: v.PROBATION_JOBS ?? 20,
      probationShare: v.PROBATION_SHARE ?? 0.2,
      storageMaxBytes: v.REGION_STORAGE_BYTES ?? 256 * 1024 * 1024,
      storageMaxJobs: v.REGION_MAX_JOBS ?? 10_000,
    },
    anonymous: {
      on: v.ANONYMOUS_TIER === "on",
      rpm: v.ANONYMOUS_RPM ?? 10,
      concurrent: v.ANONYMOUS_CONCURRENT ?? 1,
    },
    credits: {
      interactiveBudgetMs: v.INTERACTIVE_BUDGET_MS ?? 10_000,
      price: {
        interactive: v.CREDIT_PRICE_INTERACTIVE ?? 2,
        batch: v.CREDIT_PRICE_BATCH ?? 1,
      },
      weight: {
        interactive: v.CREDIT_WEIGHT_INTERACTIVE ?? 2,
        batch: v.CREDIT_WEIGHT_BATCH ?? 1,
      },
      models: v.CREDIT_MODELS ?? "catalog",
    },
    allowLocationHeader: v.ALLOW_LOCATION_HEADER === "true",
    streamIdleMs: v.STREAM_IDLE_MS ?? 5_000,
    sseKeepAliveMs: v.SSE_KEEPALIVE_MS ?? 10_000,
    listingCacheMs: v.LISTING_CACHE_MS ?? 2_000,
    iceServers: { iceServers: v.ICE_SERVERS ?? [] },
    signal: {
      secret:
        v.SIGNAL_SECRET ??
        (v.SIGNAL_DEV_SECRET === "true" || v.ALLOW_LOCATION_HEADER === "true"
          ? DEV_SIGNAL_SECRET
          : null),
      maxPeersPerIp: v.SIGNAL_MAX_PEERS_PER_IP ?? 20,
      framesPerSecond: v.SIGNAL_FRAMES_PER_SECOND ?? 20,
      frameBurst: v.SIGNAL_FRAME_BURST ?? 100,
      peerIdTtlMs: v.SIGNAL_PEER_ID_TTL_MS ?? DEFAULT_PEER_ID_TTL_MS,
    },
    adminToken: v.ADMIN_TOKEN ?? null,
    fallback: v.FALLBACK_URL
      ? { url: v.FALLBACK_URL, apiKey: v.FALLBACK_API_KEY ?? null, model: v.FALLBACK_MODEL ?? null }
      : null,
  };
}

/** Parsed once per env object: the Worker's env and each Durable Object's env are long-lived. */
const cache = new WeakMap<object, Config>();

/** The configuration for `env`, parsed on first use and memoised; warnings are logged once. */
export function readConfig(env: Partial<AppEnv>): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const { vars, warnings } = parseVars(env as Record<string, unknown>);
  for (const warning of warnings) log("warn", `config: ${warning}`);
  const config = build(vars);
  cache.set(env, config);
  return config;
}

/** Silence after which a response re-subscribes to its job (STREAM_IDLE_MS, default 5 s). */
export function streamIdleMs(env: Partial<AppEnv>): number {
  return readConfig(env).streamIdleMs;
}
