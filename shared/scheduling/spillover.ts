import type { Location } from "../geo/distance.js";
import { objectiveMs, scoreTab, type CandidateTab, type MatchRequest } from "./score.js";

/**
 * Spillover between regions (docs/routing.md "Between regions"). The coordinator runs one
 * `Scheduler` per region; a request is first offered to the client's home region, and goes to a
 * neighbour only when the neighbour's expected first token, read from the summary it sends the
 * Directory, beats the home region's own offer. The same functions decide in the Worker
 * (edge/region-client/open-job.ts) and in bench:geo (scripts/sim/policies.ts `regional`).
 */

/**
 * A region's offer keeps, per model, its best tab for a client at the region's centre with each of
 * these prompt sizes: a short prompt favours the nearest tab, a long one the fastest prefill.
 */
export const OFFER_PROMPT_TOKENS: readonly number[] = [100, 600, 2500, 8000];
/** Models per region summary (the Directory row stays small whatever a region serves). */
export const MAX_OFFER_MODELS = 16;
/** Neighbours asked after the home region declines (a declining region writes nothing). */
export const MAX_SPILL_TRIES = 3;
/**
 * A neighbour's estimate must beat the home region's offer by this factor before the request
 * leaves home: the neighbour's figure is up to a couple of seconds old and its tabs' positions are
 * rounded, while home answers with its own scheduler's estimate now. Measured with bench:geo
 * (docs/routing.md).
 */
export const DEFAULT_SPILL_MARGIN = 1.1;
/** A neighbour must beat home's offer by more than this (ms): home wins ties. */
const TIE_MS = 0.001;

/** One tab as a region's summary offers it (no id; position rounded to whole degrees). */
export interface OfferPoint {
  lat: number;
  lon: number;
  /** Fixed network part: the tab's socket round trip plus access delay (ms). */
  fixedMs: number;
  prefillTps: number;
  decodeTps: number;
  /** Epoch ms at which the jobs ahead of a new one are expected done (0: idle). */
  freeAtMs: number;
  /** Cold load (ms) when the model is not resident, else 0. */
  coldMs: number;
}

/** What one region can offer a new request for one model. */
export interface ModelOffer {
  /** Its best tabs that can take a job now (idle, or with room to queue one). */
  points: OfferPoint[];
  /** Epoch ms at which a request joining the region's waiting line is expected to start. */
  lineStartMs: number;
  /** Its best tab for a mid-sized prompt whatever its queue: what a request in the line gets. */
  lineTab?: OfferPoint;
}

/** Per model served. */
export type RegionOffers = Record<string, ModelOffer>;

/** A tab serving here, for the line estimate: when its work is expected done (0: idle). */
export interface TabFreeAt {
  tab: CandidateTab;
  freeAtMs: number;
}

/** The reference prompt the line's tab is chosen for. */
const LINE_PROMPT_TOKENS = 600;

const round1 = (v: number) => Math.round(v * 10) / 10;
/** Positions are kept to whole degrees (~100 km), as the status page shows them: never a tab's own. */
const wholeDegree = (v: number) => Math.round(v);

function pointOf(tab: CandidateTab, model: string): OfferPoint {
  return {
    lat: wholeDegree(tab.location.lat),
    lon: wholeDegree(tab.location.lon),
    fixedMs: Math.round(tab.socketRttMs + tab.accessDelayMs),
    prefillTps: round1(tab.prefillTokensPerSec),
    decodeTps: round1(tab.decodeTokensPerSec),
    freeAtMs: tab.queue.jobsAhead > 0 ? Math.round(tab.queue.freeAtMs) : 0,
    coldMs: tab.loadedModels.includes(model) ? 0 : Math.round(tab.coldLoadMs),
  };
}

function tabOf(p: OfferPoint, model: string): CandidateTab {
  return {
    id: "",
    location: { lat: p.lat, lon: p.lon },
    accessDelayMs: 0,
    socketRttMs: p.fixedMs,
    queue: { jobsAhead: p.freeAtMs > 0 ? 1 : 0, freeAtMs: p.freeAtMs },
    prefillTokensPerSec: p.prefillTps,
    decodeTokensPerSec: p.decodeTps,
    models: [model],
    loadedModels: p.coldMs > 0 ? [] : [model],
    coldLoadMs: p.coldMs,
    lastSeenMs: 0,
  };
}

/**
 * When a request joining a line with `waiting` requests ahead is expected to start: each tab that
 * frees up takes the next one, so with fewer waiting than tabs it is the (waiting+1)-th tab to free
 * up; past that, each further round takes about as long as the work the tabs hold now (a running
 * job is on average half done, so twice its remaining time). Infinity with no tab.
 */
export function lineStartMs(freeAts: readonly number[], waiting: number, nowMs: number): number {
  const n = freeAts.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  const sorted = freeAts.map((t) => Math.max(nowMs, t)).sort((a, b) => a - b);
  if (waiting < n) return sorted[waiting]!;
  const meanLeft = sorted.reduce((s, t) => s + (t - nowMs), 0) / n;
  const rounds = Math.floor(waiting / n);
  return sorted[waiting % n]! + rounds * Math.max(1, 2 * meanLeft);
}

/** The (at most MAX_OFFER_MODELS) models a region offers: by `rank`, then tabs, then name. */
function offerModels(
  all: readonly TabFreeAt[],
  rank?: (model: string, tabs: number) => number,
): Set<string> {
  if (!rank) {
    const first = new Set<string>();
    for (const { tab } of all)
      for (const model of tab.models) if (first.size < MAX_OFFER_MODELS) first.add(model);
    return first;
  }
  const counts = new Map<string, number>();
  for (const { tab } of all)
    for (const model of tab.models) counts.set(model, (counts.get(model) ?? 0) + 1);
  const score = new Map([...counts].map(([m, n]) => [m, rank(m, n)]));
  return new Set(
    [...counts.keys()]
      .sort(
        (a, b) =>
          score.get(b)! - score.get(a)! || counts.get(b)! - counts.get(a)! || a.localeCompare(b),
      )
      .slice(0, MAX_OFFER_MODELS),
  );
}

/**
 * A region's summary of what it can offer: for each model (at most MAX_OFFER_MODELS), its best
 * offered tab for each reference prompt size from the region's centre (deduplicated, so at most
 * OFFER_PROMPT_TOKENS.length points), and when its line would start a new request.
 * `offered` are the scheduler's offered tabs with their learned speeds and queues
 * (`Scheduler.index.tabs()`); `all` every tab serving here, busy or not.
 */
export function regionOffers(
  offered: Iterable<CandidateTab>,
  all: Iterable<TabFreeAt>,
  waiting: number,
  centre: Location,
  nowMs: number,
  /**
   * Which models come first when more than MAX_OFFER_MODELS are served (higher first): a tab
   * chooses the names it announces, so without a ranking made-up names seen first pushed the
   * catalog's models out of the offers. Absent: the order the tabs are seen in.
   */
  rank?: (model: string, tabs: number) => number,
): RegionOffers {
  const tabsAll = [...all];
  const offeredModels = offerModels(tabsAll, rank);
  const freeAts = new Map<string, number[]>();
  const lineTabs = new Map<string, { ms: number; tab: CandidateTab }>();
  for (const { tab, freeAtMs } of tabsAll) {
    for (const model of tab.models) {
      if (!offeredModels.has(model)) continue;
      let list = freeAts.get(model);
      if (!list) freeAts.set(model, (list = []));
      list.push(freeAtMs);
      const idle = { ...tab, queue: { jobsAhead: 0, freeAtMs: 0 } };
      const req = {
        clientLocation: centre,
        model,
        promptTokens: LINE_PROMPT_TOKENS,
        maxTokens: 0,
        stream: true,
      };
      const ms = objectiveMs(idle, req, nowMs);
      const was = lineTabs.get(model);
      if (!was || ms < was.ms || (ms === was.ms && tab.id < was.tab.id))
        lineTabs.set(model, { ms, tab: idle });
    }
  }
  const best = new Map<string, Array<{ ms: number; tab: CandidateTab } | null>>();
  for (const tab of offered) {
    for (const model of tab.models) {
      if (!freeAts.has(model)) continue;
      let slots = best.get(model);
      if (!slots) best.set(model, (slots = OFFER_PROMPT_TOKENS.map(() => null)));
      OFFER_PROMPT_TOKENS.forEach((promptTokens, i) => {
        const req = { clientLocation: centre, model, promptTokens, maxTokens: 0, stream: true };
        const ms = objectiveMs(tab, req, nowMs);
        const slot = slots[i];
        if (!slot || ms < slot.ms || (ms === slot.ms && tab.id < slot.tab.id))
          slots[i] = { ms, tab };
      });
    }
  }
  const out: RegionOffers = {};
  for (const [model, list] of freeAts) {
    const seen = new Set<string>();
    const points: OfferPoint[] = [];
    for (const slot of best.get(model) ?? []) {
      if (!slot || seen.has(slot.tab.id)) continue;
      seen.add(slot.tab.id);
      points.push(pointOf(slot.tab, model));
    }
    const line = lineTabs.get(model);
    out[model] = {
      points,
      lineStartMs: Math.min(Number.MAX_SAFE_INTEGER, Math.round(lineStartMs(list, waiting, nowMs))),
      ...(line ? { lineTab: pointOf(line.tab, model) } : {}),
    };
  }
  return out;
}

/** The neighbour's expected objective (TTFT for streams) for `req`: its best point; Infinity if none. */
export function offerEstimateMs(
  offer: ModelOffer | undefined,
  req: MatchRequest,
  nowMs: number,
): number {
  let best = Number.POSITIVE_INFINITY;
  for (const p of offer?.points ?? [])
    best = Math.min(best, objectiveMs(tabOf(p, req.model), req, nowMs));
  return best;
}

/** A request's expected objective if it joins the region's line: the wait plus its best point. */
export function lineEstimateMs(
  offer: ModelOffer | undefined,
  req: MatchRequest,
  nowMs: number,
): number {
  if (!offer?.lineTab) return Number.POSITIVE_INFINITY;
  const wait = Math.max(0, offer.lineStartMs - nowMs);
  const idle = { ...tabOf(offer.lineTab, req.model), queue: { jobsAhead: 0, freeAtMs: 0 } };
  return wait + scoreTab(idle, req, nowMs).objectiveMs;
}

/** Merge the offers of a region's shards for one model (their points, the soonest line). */
export function mergeOffers(offers: Iterable<ModelOffer | undefined>): ModelOffer | undefined {
  let out: ModelOffer | undefined;
  for (const o of offers) {
    if (!o) continue;
    if (!out) {
      out = { ...o, points: [...o.points] };
      continue;
    }
    const soonest = o.lineStartMs < out.lineStartMs ? o : out;
    const lineTab = soonest.lineTab ?? out.lineTab ?? o.lineTab;
    out = {
      points: [...out.points, ...o.points],
      lineStartMs: Math.min(out.lineStartMs, o.lineStartMs),
      ...(lineTab ? { lineTab } : {}),
    };
  }
  return out;
}

export interface RegionEstimate<R = string> {
  region: R;
  ms: number;
}

/**
 * Neighbours' estimates for a request, best first (ties: the order given, nearest first), the
 * regions without an offer left out.
 */
export function rankNeighbours<R>(
  neighbours: ReadonlyArray<{ region: R; offer: ModelOffer | undefined }>,
  req: MatchRequest,
  nowMs: number,
): Array<RegionEstimate<R>> {
  return neighbours
    .map(({ region, offer }, i) => ({ region, ms: offerEstimateMs(offer, req, nowMs), i }))
    .filter((n) => Number.isFinite(n.ms))
    .sort((a, b) => a.ms - b.ms || a.i - b.i)
    .map(({ region, ms }) => ({ region, ms }));
}

/**
 * The home region's threshold: it takes the request when its own best offer is at most this, and
 * otherwise declines (cheaply, writing nothing) and says what it offered. Infinity when no
 * neighbour offers anything: home takes whatever it has.
 */
export function homeAcceptUpToMs(
  ranked: ReadonlyArray<RegionEstimate<unknown>>,
  margin = DEFAULT_SPILL_MARGIN,
): number {
  const first = ranked[0];
  return first ? first.ms * margin : Number.POSITIVE_INFINITY;
}

/**
 * After home declined with `homeOfferMs` (null: it had no tab to offer), the neighbours to ask in
 * order — those whose estimate beats home's offer by `margin`, at most `maxTries` — and the
 * threshold each is asked with (`acceptUpToMs`): it takes the request only if its real offer beats
 * home's (home wins ties), so a neighbour whose summary was stale declines and costs one cheap call.
 */
export function spillPlan<R>(
  ranked: ReadonlyArray<RegionEstimate<R>>,
  homeOfferMs: number | null,
  margin = DEFAULT_SPILL_MARGIN,
  maxTries = MAX_SPILL_TRIES,
): { tries: R[]; acceptUpToMs: number } {
  const home = homeOfferMs ?? Number.POSITIVE_INFINITY;
  return {
    tries: ranked
      .filter((n) => n.ms * margin < home)
      .slice(0, maxTries)
      .map((n) => n.region),
    acceptUpToMs: home - TIE_MS,
  };
}

/**
 * Where a request no region could take now waits: the region whose line is expected to give it
 * its first token soonest (home first on ties). `lines` lists home first.
 */
export function waitRegion<R>(
  lines: ReadonlyArray<{ region: R; offer: ModelOffer | undefined }>,
  req: MatchRequest,
  nowMs: number,
): R | null {
  let best: { region: R; ms: number } | null = null;
  for (const { region, offer } of lines) {
    const ms = lineEstimateMs(offer, req, nowMs);
    if (Number.isFinite(ms) && (!best || ms < best.ms)) best = { region, ms };
  }
  return best?.region ?? null;
}

/**
 * Moving a job already waiting in a region's line (docs/routing.md "Between regions"): a Region
 * object with a non-empty line looks at it at most once every WAITING_MOVE_INTERVAL_MS, at the
 * first WAITING_MOVE_SCAN jobs, and moves at most WAITING_MOVE_TRIES of them per pass (a declined
 * ask counts as a try) to a neighbour that is expected to start them sooner. bench:geo's per-region
 * policy runs the same pass (scripts/sim/policies.ts).
 */
export const WAITING_MOVE_INTERVAL_MS = 1000;
export const WAITING_MOVE_SCAN = 16;
export const WAITING_MOVE_TRIES = 4;
/**
 * A neighbour's summary estimate must beat the job's expected first token here by this factor: the
 * same reasons as DEFAULT_SPILL_MARGIN (an older, rounded figure against the region's own), and
 * the neighbour is then asked to take it only if its real offer beats the estimate here.
 */
export const WAITING_MOVE_MARGIN = DEFAULT_SPILL_MARGIN;

/**
 * Where a job waiting in a line should move, or null to stay: the best-ranked neighbour (from
 * `rankNeighbours`) whose estimate beats `hereMs` — the job's expected objective if it stays, from
 * the region's own offer with the jobs ahead of it in line (`lineEstimateMs`) — by `margin`, and
 * the `acceptUpToMs` it is asked with (it takes the job only if its real offer beats staying).
 */
export function waitingMove<R>(
  ranked: ReadonlyArray<RegionEstimate<R>>,
  hereMs: number,
  margin = WAITING_MOVE_MARGIN,
): { region: R; acceptUpToMs: number } | null {
  const plan = spillPlan(ranked, hereMs, margin, 1);
  const region = plan.tries[0];
  if (region === undefined) return null;
  // No estimate here at all (no tab left for the model): any neighbour's offer beats staying.
  const acceptUpToMs = Number.isFinite(hereMs) ? plan.acceptUpToMs : Number.MAX_SAFE_INTEGER;
  return { region, acceptUpToMs };
}
