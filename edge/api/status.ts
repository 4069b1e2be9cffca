import { Hono } from "hono";
import type { NodeState } from "../../shared/protocol/node-messages.js";
import type {
  ModelView,
  NetworkView,
  PlaceView,
  RegionView,
  VerificationView,
  WindowView,
} from "../../shared/status/status-views.js";
import { directorySnapshot } from "../directory/directory-client.js";
import type { DirectorySnapshot } from "../directory/directory-do.js";
import type { AppContext } from "../env.js";
import { listedModels } from "../model-catalog.js";
import type { TrustHealth } from "../region/trust-health.js";
import { topContributors } from "../credits/top-contributors.js";
import {
  addCounts,
  emptyCounts,
  STATS_WINDOWS,
  windowStats,
  type StatsWindow,
  type WindowStats,
} from "../region/region-stats.js";

/**
 * The public status API (docs/status.md): the network, per model and per region, all read from
 * the Directory's per-region summaries — never a scan of the Region objects — and cacheable for a
 * few seconds. Field names are snake_case like the rest of the public API.
 */

/** How long clients and caches may reuse an answer. Regions report at most once a second. */
const MAX_AGE_S = 5;

function windowView(w: WindowStats): WindowView {
  return {
    requests: w.requests,
    done: w.done,
    failed: w.failed,
    cancelled: w.cancelled,
    failed_over: w.failedOver,
    hedged: w.hedged,
    hedge_won: w.hedgeWon,
    hedge_loser_ms: Math.round(w.hedgeLoserMs),
    ttft_ms: w.ttftMs,
    tokens_per_s: w.tokensPerS,
  };
}

function emptyWindows(): Record<StatsWindow, WindowView> {
  const w = windowView(windowStats(emptyCounts()));
  return { "5m": w, "1h": w, "1d": w };
}

function verificationView(t: TrustHealth | null | undefined): VerificationView | null {
  if (!t) return null;
  return {
    audits: { ...t.audits },
    canaries: { ...t.canaries },
    audits_pending: t.auditsPending,
    quarantined_tabs: t.quarantinedTabs,
    quarantined_identities: t.quarantinedIdentities,
  };
}

/** The sum of the regions' verification figures (null when no region runs verification). */
export function addVerification(
  a: VerificationView | null,
  b: VerificationView | null,
): VerificationView | null {
  if (!a || !b) return a ?? b;
  return {
    audits: {
      passed: a.audits.passed + b.audits.passed,
      failed: a.audits.failed + b.audits.failed,
    },
    canaries: {
      passed: a.canaries.passed + b.canaries.passed,
      failed: a.canaries.failed + b.canaries.failed,
    },
    audits_pending: a.audits_pending + b.audits_pending,
    quarantined_tabs: a.quarantined_tabs + b.quarantined_tabs,
    quarantined_identities: a.quarantined_identities + b.quarantined_identities,
  };
}

function noStates(): Record<NodeState, number> {
  return { loading: 0, idle: 0, busy: 0, paused: 0 };
}

export function regionViews(snapshot: DirectorySnapshot): RegionView[] {
  return Object.entries(snapshot)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([region, s]) => {
      const idle = Object.values(s.models).reduce((n, m) => Math.max(n, m.idle), 0);
      const windows = s.status
        ? (Object.fromEntries(
            STATS_WINDOWS.map((w) => [w, windowView(s.status!.stats.windows[w])]),
          ) as Record<StatsWindow, WindowView>)
        : emptyWindows();
      return {
        region,
        tabs: s.nodes,
        idle: s.status?.states.idle ?? idle,
        queued: s.queued,
        states: s.status?.states ?? noStates(),
        updated_at: new Date(s.updatedAt).toISOString(),
        windows,
        verification: verificationView(s.status?.trust),
      };
    });
}

export function modelViews(snapshot: DirectorySnapshot): ModelView[] {
  const out = new Map<string, ModelView & { tokens: number; decodeMs: number }>();
  for (const [region, s] of Object.entries(snapshot)) {
    const names = new Set([...Object.keys(s.models), ...Object.keys(s.status?.models ?? {})]);
    for (const id of names) {
      const m = s.status?.models[id];
      const cap = s.models[id] ?? { nodes: 0, idle: 0 };
      const v = out.get(id) ?? {
        id,
        nodes: 0,
        idle: 0,
        queued: 0,
        eta_s: null,
        tokens_per_s: null,
        regions: [],
        tokens: 0,
        decodeMs: 0,
      };
      v.nodes += cap.nodes;
      v.idle += cap.idle;
      v.queued += m?.queued ?? 0;
      if (cap.nodes > 0) v.regions.push(region);
      const eta = m ? m.etaS : cap.idle > 0 ? 0 : null;
      if (eta !== null) v.eta_s = v.eta_s === null ? eta : Math.min(v.eta_s, eta);
      const speed = s.status?.stats.models[id];
      if (speed) {
        v.tokens += speed.tokens;
        v.decodeMs += speed.decodeMs;
      }
      out.set(id, v);
    }
  }
  return [...out.values()]
    .filter((v) => v.nodes > 0 || v.queued > 0)
    .sort((a, b) => a.id.localeCompare(b.id))
    .map(({ tokens, decodeMs, ...v }) => ({
      ...v,
      tokens_per_s: decodeMs > 0 ? Math.round((tokens * 10_000) / decodeMs) / 10 : null,
    }));
}

/**
 * The network at a glance. `listed` are the models as GET /v1/status/models lists them
 * (`listedModels`: catalog models and at most MAX_LISTED_OTHER_MODELS other names): `models` counts
 * those with a tab, so the headline never counts a name the listing leaves out — a tab may
 * announce any 32 names, and counting every one let tabs inflate "serving N models" at will.
 */
export function networkView(
  snapshot: DirectorySnapshot,
  listed: readonly ModelView[],
): NetworkView {
  const states = noStates();
  const places = new Map<string, PlaceView>();
  const windows = { "5m": emptyCounts(), "1h": emptyCounts(), "1d": emptyCounts() };
  let tabs = 0;
  let queued = 0;
  let regions = 0;
  let latest = 0;
  let verification: VerificationView | null = null;
  for (const s of Object.values(snapshot)) {
    tabs += s.nodes;
    queued += s.queued;
    if (s.nodes > 0) regions += 1;
    latest = Math.max(latest, s.updatedAt);
    if (!s.status) continue;
    verification = addVerification(verification, verificationView(s.status.trust));
    for (const [state, n] of Object.entries(s.status.states)) states[state as NodeState] += n;
    for (const p of s.status.places) {
      const key = `${p.lat},${p.lon}`;
      const v = places.get(key) ?? { lat: p.lat, lon: p.lon, tabs: 0, states: {} };
      v.tabs += p.tabs;
      for (const [state, n] of Object.entries(p.states))
        v.states[state as NodeState] = (v.states[state as NodeState] ?? 0) + n;
      places.set(key, v);
    }
    for (const w of STATS_WINDOWS) addCounts(windows[w], s.status.stats.windows[w]);
  }
  const models = listed.filter((m) => m.nodes > 0).length;
  return {
    object: "network.status",
    tabs,
    idle: states.idle,
    states,
    queued,
    regions,
    models,
    places: [...places.values()],
    windows: {
      "5m": windowView(windowStats(windows["5m"])),
      "1h": windowView(windowStats(windows["1h"])),
      "1d": windowView(windowStats(windows["1d"])),
    },
    verification,
    updated_at: latest ? new Date(latest).toISOString() : null,
  };
}

/** GET /v1/status, /v1/status/models, /v1/status/regions. */
export function statusRoutes() {
  const app = new Hono<AppContext>();
  app.use("/status", cacheable());
  app.use("/status/*", cacheable());

  app.get("/status", async (c) => {
    const snapshot = await directorySnapshot(c.env);
    const listed = await listedModels(c.env, modelViews(snapshot));
    return c.json({
      ...networkView(snapshot, listed),
      top_contributors: await topContributors(c.env),
    });
  });
  app.get("/status/models", async (c) =>
    c.json({
      object: "list",
      data: await listedModels(c.env, modelViews(await directorySnapshot(c.env))),
    }),
  );
  app.get("/status/regions", async (c) =>
    c.json({ object: "list", data: regionViews(await directorySnapshot(c.env)) }),
  );
  return app;
}

function cacheable() {
  return async function cacheableMiddleware(
    c: { header: (name: string, value: string) => void },
    next: () => Promise<void>,
  ) {
    await next();
    c.header("cache-control", `public, max-age=${MAX_AGE_S}`);
  };
}
