import { FIBRE_KM_PER_MS_RTT } from "../geo/distance.js";
import { BoundHeap } from "./bound-heap.js";
import { GeoGrid } from "./geo-grid.js";
import { Bounds, Bucket, Cell, bucketKey, type Entry, type Slot } from "./index-bucket.js";
import { DEFAULT_STALE_AFTER_MS, withBudget, type Match, type MatchResult } from "./linear-scan.js";
import { isBetter, objectiveMs, scoreTab, type CandidateTab, type MatchRequest } from "./score.js";

/**
 * The tabs a coordinator can choose from, indexed so that matching does not look at every tab:
 * by model, then by a coarse geographic grid, then by alike-tab buckets (see index-bucket.ts).
 *
 * `best` is a best-first search: every non-empty cell gets a lower bound on the objective of any
 * tab inside it (nearest possible distance, fastest prefill, shortest wait … found in that cell);
 * cells are opened in bound order, their buckets likewise, and the search stops as soon as the next
 * bound cannot beat the best tab found. Bounds never exceed true scores and ties are broken by tab
 * id in both the search and the linear scan, so the result equals `linearBest` exactly.
 */

export interface CandidateIndexOptions {
  /** Grid cell size in degrees; must divide 180. Smaller cells: tighter bounds, more cells. */
  cellDegrees?: number;
  /** Tabs whose last heartbeat is older than this are never chosen. */
  staleAfterMs?: number;
}

/** Bounds are lowered by this much so floating-point rounding can never prune a true winner. */
const BOUND_SLACK_MS = 1e-6;

type Node = { cell: Cell; netMs: number; bucket?: Bucket };

export class CandidateIndex {
  readonly staleAfterMs: number;
  private readonly grid: GeoGrid;
  private readonly entries = new Map<string, Entry>();
  private readonly byModel = new Map<string, Map<number, Cell>>();

  constructor(options: CandidateIndexOptions = {}) {
    this.grid = new GeoGrid(options.cellDegrees ?? 5);
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): CandidateTab | undefined {
    return this.entries.get(id)?.tab;
  }

  *tabs(): IterableIterator<CandidateTab> {
    for (const entry of this.entries.values()) yield entry.tab;
  }

  /** Adds a tab or replaces its record (queue, speeds, models, heartbeat all change constantly). */
  upsert(tab: CandidateTab): void {
    this.remove(tab.id);
    const entry: Entry = { tab, fixedMs: tab.accessDelayMs + tab.socketRttMs, slots: [] };
    const cellId = this.grid.cellOf(tab.location);
    const busy = tab.queue.jobsAhead > 0;
    for (const model of new Set(tab.models)) {
      let cells = this.byModel.get(model);
      if (!cells) this.byModel.set(model, (cells = new Map()));
      let cell = cells.get(cellId);
      if (!cell) cells.set(cellId, (cell = new Cell(cellId)));
      const loaded = tab.loadedModels.includes(model);
      const key = bucketKey(loaded, busy, tab.prefillTokensPerSec);
      let bucket = cell.buckets.get(key);
      if (!bucket) cell.buckets.set(key, (bucket = new Bucket(cell, key, loaded, busy)));
      const slot: Slot = { entry, bucket, pos: bucket.items.length };
      bucket.items.push(slot);
      bucket.includeTab(entry);
      cell.includeTab(entry);
      cell.size++;
      if (!busy) cell.idle++;
      if (loaded) cell.loaded++;
      entry.slots.push(slot);
    }
    this.entries.set(tab.id, entry);
  }

  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    for (const slot of entry.slots) {
      const { bucket } = slot;
      const { cell } = bucket;
      const last = bucket.items.pop()!;
      if (last !== slot) {
        bucket.items[slot.pos] = last;
        last.pos = slot.pos;
      }
      if (bucket.heldExtreme(entry)) bucket.dirty = true;
      if (cell.heldExtreme(entry)) cell.dirty = true;
      cell.size--;
      if (!bucket.busy) cell.idle--;
      if (bucket.loaded) cell.loaded--;
      if (bucket.items.length === 0) cell.buckets.delete(bucket.key);
      if (cell.size === 0) this.dropCell(entry.tab, cell);
    }
    this.entries.delete(id);
    return true;
  }

  /** Removes tabs not heard from within staleAfterMs; returns their ids. Call it periodically. */
  sweepStale(nowMs: number): string[] {
    const gone: string[] = [];
    for (const entry of this.entries.values()) {
      if (nowMs - entry.tab.lastSeenMs > this.staleAfterMs) gone.push(entry.tab.id);
    }
    for (const id of gone) this.remove(id);
    return gone;
  }

  /** The tab with the lowest objective for `req` (ignoring the budget), or null if none is fresh. */
  best(req: MatchRequest, nowMs: number): Match | null {
    const cells = this.byModel.get(req.model);
    if (!cells) return null;
    const heap = new BoundHeap<Node>();
    for (const cell of cells.values()) {
      const netMs =
        this.grid.minDistanceKm(req.clientLocation, cell.id) / FIBRE_KM_PER_MS_RTT - BOUND_SLACK_MS;
      heap.push(lowerBound(netMs, cell, cell.idle > 0, cell.loaded > 0, req, nowMs), {
        cell,
        netMs,
      });
    }
    let best: CandidateTab | null = null;
    let bestScore = Infinity;
    while (heap.size > 0 && heap.peekBound() <= bestScore) {
      const node = heap.pop()!;
      const { cell, netMs, bucket } = node;
      if (!bucket) {
        if (cell.dirty) {
          // Tighten, and revisit later if the refreshed bound is no longer the smallest.
          cell.refresh();
          const bound = lowerBound(netMs, cell, cell.idle > 0, cell.loaded > 0, req, nowMs);
          if (bound > bestScore) continue;
          if (bound > heap.peekBound()) {
            heap.push(bound, node);
            continue;
          }
        }
        for (const b of cell.buckets.values()) {
          if (b.dirty) b.refresh();
          const bound = lowerBound(netMs, b, !b.busy, b.loaded, req, nowMs);
          if (bound <= bestScore) heap.push(bound, { cell, netMs, bucket: b });
        }
        continue;
      }
      for (const slot of bucket.items) {
        const tab = slot.entry.tab;
        if (nowMs - tab.lastSeenMs > this.staleAfterMs) continue;
        const score = objectiveMs(tab, req, nowMs);
        if (best === null || isBetter(score, tab.id, bestScore, best.id)) {
          best = tab;
          bestScore = score;
        }
      }
    }
    return best ? { tab: best, estimate: scoreTab(best, req, nowMs) } : null;
  }

  /** `best` plus the latency budget: what the coordinator calls per request. */
  match(req: MatchRequest, nowMs: number): MatchResult {
    return withBudget(this.best(req, nowMs), req);
  }

  private dropCell(tab: CandidateTab, cell: Cell): void {
    for (const model of tab.models) {
      const cells = this.byModel.get(model);
      if (cells?.get(cell.id) === cell) {
        cells.delete(cell.id);
        if (cells.size === 0) this.byModel.delete(model);
      }
    }
  }
}

/** Lower bound of the objective of any tab summarised by `b`, `netMs` away at the least. */
function lowerBound(
  netMs: number,
  b: Bounds,
  anyIdle: boolean,
  anyLoaded: boolean,
  req: MatchRequest,
  nowMs: number,
): number {
  let ms = netMs + b.minFixedMs;
  if (!anyIdle) ms += Math.max(0, b.minFreeAtMs - nowMs);
  ms += (req.promptTokens * 1000) / b.maxPrefill;
  if (!anyLoaded) ms += b.minColdMs;
  if (!req.stream) ms += (req.maxTokens * 1000) / b.maxDecode;
  return ms;
}
