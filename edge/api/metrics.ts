import { Hono, type MiddlewareHandler } from "hono";
import { timingSafeEqual } from "../auth/secret.js";
import { directorySnapshot, metricsDirectoryStub } from "../directory/directory-client.js";
import type { RequestCount } from "../directory/directory-do.js";
import type { AppContext, AppEnv } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { listedModels } from "../model-catalog.js";
import { TPS_BOUNDS, TTFT_BOUNDS_MS, type StatsCounts } from "../region/region-stats.js";
import { modelViews } from "./status.js";

/**
 * GET /metrics for Prometheus (text exposition format 0.0.4), guarded by the METRICS_TOKEN secret
 * (`Authorization: Bearer <token>`; wrangler secret put METRICS_TOKEN). Region figures come from
 * the Directory's per-region summaries (each Region keeps its own histograms; no scan per scrape);
 * HTTP request counts are kept per Worker isolate and added to the Directory's `metrics` object
 * every few seconds (a scrape adds its own isolate's first, so they are exact in a single isolate
 * and at most FLUSH_MS behind across many).
 */

type MetricsEnv = AppEnv & {
  /** Bearer token for GET /metrics; unset: the endpoint answers 403. */
  METRICS_TOKEN?: string;
};

/** How often an isolate adds its request counts to the Directory's `metrics` object. */
const FLUSH_MS = 10_000;

/** Route labels: a fixed set, so a caller cannot grow the metrics by inventing paths. */
const EXACT_ROUTES = new Set([
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/models",
  "/v1/catalog",
  "/v1/nodes",
  "/v1/nodes/connect",
  "/v1/status",
  "/v1/status/models",
  "/v1/status/regions",
  "/metrics",
]);
const PREFIX_ROUTES = ["/v1/jobs/", "/v1/signal/", "/v1/admin/"];

export function routeLabel(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (EXACT_ROUTES.has(trimmed)) return trimmed;
  const prefix = PREFIX_ROUTES.find((p) => trimmed.startsWith(p));
  return prefix ? `${prefix}*` : "other";
}

/** This isolate's counts not yet added to the Directory. */
const pending = new Map<string, RequestCount>();
let lastFlush = 0;

function drain(): RequestCount[] {
  const out = [...pending.values()];
  pending.clear();
  lastFlush = Date.now();
  return out;
}

async function flush(env: AppEnv): Promise<void> {
  const counts = drain();
  if (counts.length) await metricsDirectoryStub(env).addRequests(counts);
}

/**
 * Count one answered request by route and status, and add this isolate's counts to the Directory
 * when FLUSH_MS have passed (in the background when the caller gives its `waitUntil`).
 */
export function countRequest(
  path: string,
  status: number,
  env: AppEnv,
  waitUntil?: (done: Promise<unknown>) => void,
): void {
  const route = routeLabel(path);
  const key = `${route} ${status}`;
  const entry = pending.get(key) ?? { route, status, count: 0 };
  entry.count += 1;
  pending.set(key, entry);
  if (route !== "/metrics" && Date.now() - lastFlush > FLUSH_MS) {
    const done = flush(env).catch(() => undefined);
    waitUntil?.(done);
  }
}

/** Counts every answered request by route and status (mounted before the routes). */
export function countRequests(): MiddlewareHandler<AppContext> {
  return async function countRequestsMiddleware(c, next) {
    await next();
    countRequest(c.req.path, c.res.status, c.env, (done) => {
      try {
        c.executionCtx.waitUntil(done);
      } catch {
        // No execution context (a unit calling app.request): the flush just runs.
      }
    });
  };
}

function metricsOnly(): MiddlewareHandler<AppContext> {
  return async function metricsOnlyMiddleware(c, next) {
    const token = (c.env as MetricsEnv).METRICS_TOKEN;
    if (!token)
      throw new ApiError(
        403,
        "permission_error",
        "Metrics are disabled: set the METRICS_TOKEN secret.",
        null,
        "metrics_disabled",
      );
    const given = c.req
      .header("authorization")
      ?.match(/^Bearer\s+(.+)$/i)?.[1]
      ?.trim();
    if (!given || !timingSafeEqual(given, token))
      throw new ApiError(
        401,
        "authentication_error",
        given ? "Wrong metrics token." : "Missing metrics token (Authorization: Bearer ...).",
        null,
        given ? "invalid_metrics_token" : "missing_metrics_token",
      );
    await next();
  };
}

/** A label value as the exposition format wants it (backslash, quote and newline escaped). */
function esc(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(pairs: Record<string, string>): string {
  const inner = Object.entries(pairs)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(",");
  return inner ? `{${inner}}` : "";
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, pairs: Record<string, string>, value: number): this {
    this.lines.push(`${name}${labels(pairs)} ${Number.isFinite(value) ? value : 0}`);
    return this;
  }

  /** A histogram from per-bucket counts (made cumulative here), `scale` converting the bounds. */
  histogram(
    name: string,
    pairs: Record<string, string>,
    bounds: readonly number[],
    counts: number[],
    sum: number,
    scale = 1,
  ): this {
    let cumulative = 0;
    bounds.forEach((b, i) => {
      cumulative += counts[i] ?? 0;
      this.sample(`${name}_bucket`, { ...pairs, le: String(b * scale) }, cumulative);
    });
    cumulative += counts[bounds.length] ?? 0;
    this.sample(`${name}_bucket`, { ...pairs, le: "+Inf" }, cumulative);
    this.sample(`${name}_sum`, pairs, sum);
    return this.sample(`${name}_count`, pairs, cumulative);
  }

  text(): string {
    return this.lines.join("\n") + "\n";
  }
}

export function metricsRoutes() {
  const app = new Hono<AppContext>();
  app.use("/metrics", metricsOnly());

  app.get("/metrics", async (c) => {
    await flush(c.env);
    const [snapshot, requests] = await Promise.all([
      directorySnapshot(c.env, true),
      metricsDirectoryStub(c.env).requestCounts(),
    ]);
    const out = new Exposition();
    out.family(
      "tabgrid_http_requests_total",
      "counter",
      "HTTP requests answered, by route and status.",
    );
    for (const r of requests)
      out.sample(
        "tabgrid_http_requests_total",
        { route: r.route, status: String(r.status) },
        r.count,
      );

    const regions = Object.entries(snapshot).sort(([a], [b]) => a.localeCompare(b));
    const totals = regions
      .filter(([, s]) => s.status)
      .map(([region, s]) => [region, s.status!.stats.total] as [string, StatsCounts]);

    out.family(
      "tabgrid_ttft_seconds",
      "histogram",
      "Time from a job being written to its first text reaching the client, by region.",
    );
    for (const [region, t] of totals)
      out.histogram(
        "tabgrid_ttft_seconds",
        { region },
        TTFT_BOUNDS_MS,
        t.ttft,
        t.ttftSumMs / 1000,
        0.001,
      );
    out.family(
      "tabgrid_decode_tokens_per_second",
      "histogram",
      "Decode speed of finished jobs (completion tokens over generation time), by region.",
    );
    for (const [region, t] of totals) {
      const n = t.tps.reduce((s, x) => s + x, 0);
      const mean = t.decodeMs > 0 ? (t.tokens * 1000) / t.decodeMs : 0;
      out.histogram("tabgrid_decode_tokens_per_second", { region }, TPS_BOUNDS, t.tps, mean * n);
    }
    out.family(
      "tabgrid_jobs_total",
      "counter",
      "Jobs by outcome (failed_over: moved to another tab).",
    );
    for (const [region, t] of totals) {
      for (const [outcome, n] of [
        ["done", t.done],
        ["failed", t.failed],
        ["cancelled", t.cancelled],
        ["failed_over", t.failedOver],
      ] as const)
        out.sample("tabgrid_jobs_total", { region, outcome }, n);
    }
    out.family(
      "tabgrid_hedges_total",
      "counter",
      "Hedged first tokens by outcome (started: the job also ran on a second tab; won: that tab answered first).",
    );
    for (const [region, t] of totals) {
      out.sample("tabgrid_hedges_total", { region, outcome: "started" }, t.hedged);
      out.sample("tabgrid_hedges_total", { region, outcome: "won" }, t.hedgeWon);
    }
    out.family(
      "tabgrid_hedge_loser_seconds_total",
      "counter",
      "Time the tabs that lost a hedged race worked on the job before they were cancelled: the cost of hedging.",
    );
    for (const [region, t] of totals)
      out.sample("tabgrid_hedge_loser_seconds_total", { region }, t.hedgeLoserMs / 1000);
    out.family(
      "tabgrid_completion_tokens_total",
      "counter",
      "Completion tokens served, by region.",
    );
    for (const [region, t] of totals)
      out.sample("tabgrid_completion_tokens_total", { region }, t.tokens);

    out.family("tabgrid_tabs", "gauge", "Connected tabs by region and state.");
    for (const [region, s] of regions) {
      if (!s.status) continue;
      for (const [state, n] of Object.entries(s.status.states))
        out.sample("tabgrid_tabs", { region, state }, n);
    }
    out.family("tabgrid_tabs_by_gpu_class", "gauge", "Connected tabs by region and GPU class.");
    for (const [region, s] of regions) {
      for (const [gpuClass, n] of Object.entries(s.status?.gpuClasses ?? {}))
        out.sample("tabgrid_tabs_by_gpu_class", { region, class: gpuClass }, n);
    }
    out.family("tabgrid_queue_depth", "gauge", "Requests waiting for their first tab, by region.");
    for (const [region, s] of regions) out.sample("tabgrid_queue_depth", { region }, s.queued);
    out.family(
      "tabgrid_audits_total",
      "counter",
      "Answer audits judged, by region and result (regions running verification).",
    );
    for (const [region, s] of regions) {
      const t = s.status?.trust;
      if (!t) continue;
      out.sample("tabgrid_audits_total", { region, result: "passed" }, t.audits.passed);
      out.sample("tabgrid_audits_total", { region, result: "failed" }, t.audits.failed);
    }
    out.family("tabgrid_canaries_total", "counter", "Canary jobs judged, by region and result.");
    for (const [region, s] of regions) {
      const t = s.status?.trust;
      if (!t) continue;
      out.sample("tabgrid_canaries_total", { region, result: "passed" }, t.canaries.passed);
      out.sample("tabgrid_canaries_total", { region, result: "failed" }, t.canaries.failed);
    }
    out.family(
      "tabgrid_ledger_waiting_operations",
      "gauge",
      "Credit changes a region decided and has not yet delivered to the credit ledger (earnings, settlements, quarantines, take-backs), as of its last report; above 0 for long: the ledger is not answering.",
    );
    for (const [region, s] of regions) {
      const waiting = s.status?.ledgerWaiting;
      if (typeof waiting === "number")
        out.sample("tabgrid_ledger_waiting_operations", { region }, waiting);
    }
    out.family("tabgrid_quarantined_tabs", "gauge", "Connected tabs in quarantine, by region.");
    for (const [region, s] of regions) {
      const t = s.status?.trust;
      if (t) out.sample("tabgrid_quarantined_tabs", { region }, t.quarantinedTabs);
    }
    const models = await listedModels(c.env, modelViews(snapshot));
    out.family("tabgrid_model_tabs", "gauge", "Tabs serving each model, and how many are idle.");
    for (const m of models) {
      out.sample("tabgrid_model_tabs", { model: m.id, state: "all" }, m.nodes);
      out.sample("tabgrid_model_tabs", { model: m.id, state: "idle" }, m.idle);
    }
    out.family("tabgrid_model_queue_depth", "gauge", "Requests waiting, by model.");
    for (const m of models) out.sample("tabgrid_model_queue_depth", { model: m.id }, m.queued);
    return c.body(out.text(), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    });
  });
  return app;
}
