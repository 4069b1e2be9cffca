import type { RegionHint } from "../../shared/geo/regions.js";
import type { DirectorySnapshot } from "../directory/directory-do.js";
import { parseShard } from "../region/shard-name.js";

type Row = DirectorySnapshot[string];

/**
 * Each snapshot's rows grouped by the hint of the shard that reported them. Keyed by the snapshot
 * object: an isolate hands every request the same cached routing view until its next read
 * (directory/directory-client.ts), so the names are parsed once per read rather than once per
 * hint per request (spillover asks for all eight hints). Snapshots are never modified after they
 * are read, so a grouping never goes stale; a weak key lets it go with its snapshot.
 */
const grouped = new WeakMap<DirectorySnapshot, ReadonlyMap<RegionHint, readonly Row[]>>();

/** Rows whose name is not a shard of a hint (parseShard: null) belong to no hint. */
export function groupByHint(summaries: DirectorySnapshot): ReadonlyMap<RegionHint, readonly Row[]> {
  const out = new Map<RegionHint, Row[]>();
  // Object.entries order, so each hint's rows keep the order a filter over the names gave.
  for (const [name, row] of Object.entries(summaries)) {
    const hint = parseShard(name)?.hint;
    if (!hint) continue;
    const rows = out.get(hint);
    if (rows) rows.push(row);
    else out.set(hint, [row]);
  }
  return out;
}

const NONE: readonly Row[] = [];

/** The rows of `hint`'s shards in `summaries`, grouped on the first call for that snapshot. */
export function hintRows(summaries: DirectorySnapshot, hint: RegionHint): readonly Row[] {
  let byHint = grouped.get(summaries);
  if (!byHint) grouped.set(summaries, (byHint = groupByHint(summaries)));
  return byHint.get(hint) ?? NONE;
}
