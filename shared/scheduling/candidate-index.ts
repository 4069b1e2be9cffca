import { FIBRE_KM_PER_MS_RTT } from "../geo/distance.js";
import { BoundHeap } from "./bound-heap.js";
import { GeoGrid } from "./geo-grid.js";
import {
  Bucket,
  Group,
  bucketKey,
  type Bounds,
  type Cell,
  type Entry,
  type Slot,
  type SuperCell,
} from "./index-nodes.js";
import {
  DEFAULT_IDLE_PREFERENCE,
  DEFAULT_STALE_AFTER_MS,
  idleFirst,
  type Match,
  type MatchResult,
} from "./linear-scan.js";
import { isBetter, objectiveMs, scoreTab, type CandidateTab, type MatchRequest } from "./score.js";

/**
 * The tabs a coordinator can choose from, indexed so that matching does not look at every tab:
 * by model, then by a two-level geographic grid (30° super-cells of 5° cells), then by buckets of
 * alike tabs (see index-nodes.ts).
 *
 * `best` is a best-first search: each node (super-cell, cell, bucket) has a lower bound on the
 * objective of any tab below it — nearest possible distance, fastest prefill, shortest wait … found
 * there. Nodes are opened in bound order and the search stops as soon as the next bound cannot beat
 * the best tab found. Bounds never exceed true scores and ties are broken by tab id in both the
 * search and the linear scan, so the result equals `linearBest` exactly.
 */

export interface CandidateIndexOptions {
  /** Tabs whose last heartbeat is older than this are never chosen. */
  staleAfterMs?: number;
  /** See `idleFirst`: how much faster a busy tab must be to queue behind it. */
  idlePreference?: number;
}

const CELL_DEGREES = 5;
const SUPER_CELL_DEGREES = 30;
/** Bounds are lowered by this much so floating-point rounding can never prune a true winner. */
const BOUND_SLACK_MS = 1e-6;

type Node =
  | { kind: "super"; group: SuperCell; netMs: number }
  | { kind: "cell"; group: Cell; netMs: number }
  | { kind: "bucket"; bucket: Bucket };

export class CandidateIndex {
  readonly staleAfterMs: number;
  readonly idlePreference: number;
  private readonly cells = new GeoGrid(CELL_DEGREES);
  private readonly supers = new GeoGrid(SUPER_CELL_DEGREES);
  private readonly entries = new Map<string, Entry>();
  private readonly byModel = new Map<string, Map<number, SuperCell>>();

  constructor(options: CandidateIndexOptions = {}) {
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.idlePreference = options.idlePreference ?? DEFAULT_IDLE_PREFERENCE;
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
    const cellId = this.cells.cellOf(tab.location);
    const superId = this.cells.parentCell(cellId, this.supers);
    const busy = tab.queue.jobsAhead > 0;
    for (const model of new Set(tab.models)) {
      let supers = this.byModel.get(model);
      if (!supers) this.byModel.set(model, (supers = new Map()));
      let sup = supers.get(superId);
      if (!sup) supers.set(superId, (sup = new Group<Cell>(superId, null)));
      let cell = sup.children.get(cellId);
      if (!cell) sup.children.set(cellId, (cell = new Group<Bucket>(cellId, sup)));
      const loaded = tab.loadedModels.includes(model);
      const key = bucketKey(loaded, busy, tab.prefillTokensPerSec);
      let bucket = cell.children.get(key);
      if (!bucket) cell.children.set(key, (bucket = new Bucket(cell, key, loaded, busy)));
      const slot: Slot = { entry, bucket, pos: bucket.items.length };
      bucket.items.push(slot);
      entry.slots.push(slot);
      bucket.includeTab(entry);
      for (const group of [cell, sup]) {
        group.includeTab(entry);
        group.size++;
        if (!busy) group.idle++;
        if (loaded) group.loaded++;
      }
    }
    this.entries.set(tab.id, entry);
  }

  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    for (const slot of entry.slots) {
      const { bucket } = slot;
      const cell = bucket.cell;
      const sup = cell.parent!;
      const last = bucket.items.pop()!;
      if (last !== slot) {
        bucket.items[slot.pos] = last;
        last.pos = slot.pos;
      }
      if (bucket.heldExtreme(entry)) bucket.dirty = true;
      for (const group of [cell, sup]) {
        if (group.heldExtreme(entry)) group.dirty = true;
        group.size--;
        if (!bucket.busy) group.idle--;
        if (bucket.loaded) group.loaded--;
      }
      if (bucket.items.length === 0) cell.children.delete(bucket.key);
      if (cell.size === 0) sup.children.delete(cell.id);
      if (sup.size === 0) this.dropSuper(entry.tab, sup);
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

  /**
   * The tab with the lowest objective for `req` (ignoring the budget), or null if none is fresh.
   * With `idleOnly`, only tabs with nothing queued are considered.
   */
  best(req: MatchRequest, nowMs: number, idleOnly = false): Match | null {
    const supers = this.byModel.get(req.model);
    if (!supers) return null;
    const client = req.clientLocation;
    const heap = new BoundHeap<Node>();
    for (const group of supers.values()) {
      if (idleOnly && group.idle === 0) continue;
      const netMs = this.supers.minDistanceKm(client, group.id) / FIBRE_KM_PER_MS_RTT;
      heap.push(groupBound(netMs, group, req, nowMs), { kind: "super", group, netMs });
    }
    let best: CandidateTab | null = null;
    let bestScore = Infinity;
    while (heap.size > 0 && heap.peekBound() <= bestScore) {
      const node = heap.pop()!;
      if (node.kind !== "bucket" && node.group.dirty) {
        // Tighten a loosened bound, and revisit the node later if it is no longer the smallest.
        node.group.refresh();
        const bound = groupBound(node.netMs, node.group, req, nowMs);
        if (bound > bestScore) continue;
        if (bound > heap.peekBound()) {
          heap.push(bound, node);
          continue;
        }
      }
      if (node.kind === "super") {
        for (const group of node.group.children.values()) {
          if (idleOnly && group.idle === 0) continue;
          const km = this.cells.minDistanceKm(client, group.id);
          const netMs = Math.max(node.netMs, km / FIBRE_KM_PER_MS_RTT);
          const bound = groupBound(netMs, group, req, nowMs);
          if (bound <= bestScore) heap.push(bound, { kind: "cell", group, netMs });
        }
      } else if (node.kind === "cell") {
        for (const bucket of node.group.children.values()) {
          if (idleOnly && bucket.busy) continue;
          if (bucket.dirty) bucket.refresh();
          const bound = lowerBound(node.netMs, bucket, !bucket.busy, bucket.loaded, req, nowMs);
          if (bound <= bestScore) heap.push(bound, { kind: "bucket", bucket });
        }
      } else {
        for (const slot of node.bucket.items) {
          const tab = slot.entry.tab;
          if (nowMs - tab.lastSeenMs > this.staleAfterMs) continue;
          const score = objectiveMs(tab, req, nowMs);
          if (best === null || isBetter(score, tab.id, bestScore, best.id)) {
            best = tab;
            bestScore = score;
          }
        }
      }
    }
    return best ? { tab: best, estimate: scoreTab(best, req, nowMs) } : null;
  }

  /**
   * What the coordinator calls per request: idle tabs first, then any tab, then the latency budget
   * (see `idleFirst` for why).
   */
  match(req: MatchRequest, nowMs: number): MatchResult {
    return idleFirst((idleOnly) => this.best(req, nowMs, idleOnly), req, this.idlePreference);
  }

  private dropSuper(tab: CandidateTab, sup: SuperCell): void {
    for (const model of tab.models) {
      const supers = this.byModel.get(model);
      if (supers?.get(sup.id) === sup) {
        supers.delete(sup.id);
        if (supers.size === 0) this.byModel.delete(model);
      }
    }
  }
}

function groupBound(
  netMs: number,
  g: Group<Bounds & { refresh(): void }>,
  req: MatchRequest,
  nowMs: number,
): number {
  return lowerBound(netMs, g, g.idle > 0, g.loaded > 0, req, nowMs);
}

/** Lower bound of the objective of any tab summarised by `b`, at least `netMs` of distance away. */
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
  return ms - BOUND_SLACK_MS;
}
