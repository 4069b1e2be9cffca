import type { CandidateTab } from "./score.js";

/**
 * Storage pieces of the candidate index. Tabs serving one model are split by 30° super-cell, then
 * by 5° grid cell, and inside a cell into buckets of alike tabs (model loaded or not, idle or busy, prefill speed within a
 * factor of two), so a bucket's aggregate numbers give a tight lower bound for every tab in it.
 *
 * Aggregates are kept "loose but safe": adding a tab tightens them; removing the tab that held an
 * extreme only marks them dirty, and they are recomputed the next time a search looks at them. A
 * stale aggregate is still a valid lower bound, so correctness never depends on the refresh.
 */

/** One tab's membership of one model's bucket. */
export interface Slot {
  entry: Entry;
  bucket: Bucket;
  pos: number;
}

export interface Entry {
  tab: CandidateTab;
  /** accessDelayMs + socketRttMs: the part of the network estimate that does not depend on distance. */
  fixedMs: number;
  slots: Slot[];
}

/** Aggregates that bound every tab below them; shared shape of buckets and cells. */
export class Bounds {
  minFixedMs = Infinity;
  minFreeAtMs = Infinity;
  maxPrefill = 0;
  maxDecode = 0;
  minColdMs = Infinity;
  dirty = false;

  reset(): void {
    this.minFixedMs = Infinity;
    this.minFreeAtMs = Infinity;
    this.maxPrefill = 0;
    this.maxDecode = 0;
    this.minColdMs = Infinity;
    this.dirty = false;
  }

  includeTab(entry: Entry): void {
    const tab = entry.tab;
    if (entry.fixedMs < this.minFixedMs) this.minFixedMs = entry.fixedMs;
    if (tab.queue.jobsAhead > 0 && tab.queue.freeAtMs < this.minFreeAtMs) {
      this.minFreeAtMs = tab.queue.freeAtMs;
    }
    if (tab.prefillTokensPerSec > this.maxPrefill) this.maxPrefill = tab.prefillTokensPerSec;
    if (tab.decodeTokensPerSec > this.maxDecode) this.maxDecode = tab.decodeTokensPerSec;
    if (tab.coldLoadMs < this.minColdMs) this.minColdMs = tab.coldLoadMs;
  }

  includeBounds(b: Bounds): void {
    if (b.minFixedMs < this.minFixedMs) this.minFixedMs = b.minFixedMs;
    if (b.minFreeAtMs < this.minFreeAtMs) this.minFreeAtMs = b.minFreeAtMs;
    if (b.maxPrefill > this.maxPrefill) this.maxPrefill = b.maxPrefill;
    if (b.maxDecode > this.maxDecode) this.maxDecode = b.maxDecode;
    if (b.minColdMs < this.minColdMs) this.minColdMs = b.minColdMs;
  }

  /** Whether removing this tab could loosen the aggregates (it held one of the extremes). */
  heldExtreme(entry: Entry): boolean {
    const tab = entry.tab;
    return (
      entry.fixedMs === this.minFixedMs ||
      (tab.queue.jobsAhead > 0 && tab.queue.freeAtMs === this.minFreeAtMs) ||
      tab.prefillTokensPerSec === this.maxPrefill ||
      tab.decodeTokensPerSec === this.maxDecode ||
      tab.coldLoadMs === this.minColdMs
    );
  }
}

export class Bucket extends Bounds {
  readonly items: Slot[] = [];

  constructor(
    readonly cell: Group<Bucket>,
    readonly key: number,
    readonly loaded: boolean,
    readonly busy: boolean,
  ) {
    super();
  }

  refresh(): void {
    this.reset();
    for (const slot of this.items) this.includeTab(slot.entry);
  }
}

/**
 * A geographic cell (or a super-cell of cells): its children, exact counts of the tabs below it,
 * and the aggregates of its children. `idle` and `loaded` counts let a bound drop the wait or the
 * cold-load term as soon as one tab below is idle or has the model resident.
 */
export class Group<C extends Bounds & { refresh(): void }> extends Bounds {
  readonly children = new Map<number, C>();
  size = 0;
  idle = 0;
  loaded = 0;

  constructor(
    readonly id: number,
    readonly parent: Group<Group<Bucket>> | null,
  ) {
    super();
  }

  refresh(): void {
    this.reset();
    for (const child of this.children.values()) {
      if (child.dirty) child.refresh();
      this.includeBounds(child);
    }
  }
}

export type Cell = Group<Bucket>;
export type SuperCell = Group<Cell>;

/** Bucket key inside a cell: loaded bit, busy bit, then floor(log2(prefill tokens/s)). */
export function bucketKey(loaded: boolean, busy: boolean, prefillTokensPerSec: number): number {
  const tier = Math.min(40, Math.max(0, Math.floor(Math.log2(Math.max(1, prefillTokensPerSec)))));
  return (tier << 2) | (busy ? 2 : 0) | (loaded ? 1 : 0);
}
