import type { TabRecord } from "./tab-registry.js";

/** Round trip assumed for an idle tab whose socket round trip is not measured yet. */
const UNMEASURED_RTT_MS = 100;

/**
 * What the Worker needs to choose between the shards of one location hint, reported with the
 * shard's summary: how loaded it is and, per model, how soon its best idle tab could start.
 */
export interface ShardFigures {
  /** Jobs a tab is running now: the streams whose frames this object relays. */
  streams: number;
  /** Connected tabs. */
  tabs: number;
  /**
   * Per model, the smallest socket round trip (ms) among its idle tabs: the part of the first
   * token's time that differs between shards of one hint before prefill (all of a hint's shards
   * sit near the same point). Absent for a model with no idle tab.
   */
  bestRttMs: Record<string, number>;
}

export function shardFigures(
  tabs: Iterable<TabRecord>,
  serving: (t: TabRecord) => boolean,
): ShardFigures {
  const out: ShardFigures = { streams: 0, tabs: 0, bestRttMs: {} };
  for (const tab of tabs) {
    out.tabs += 1;
    if (tab.jobId) out.streams += 1;
    if (tab.state !== "idle" || tab.jobId || !serving(tab)) continue;
    const rtt = tab.rttMs ?? UNMEASURED_RTT_MS;
    for (const model of tab.models)
      out.bestRttMs[model] = Math.min(out.bestRttMs[model] ?? Infinity, Math.round(rtt));
  }
  return out;
}
