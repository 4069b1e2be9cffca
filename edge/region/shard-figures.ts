import type { TabRecord } from "./tab-registry.js";

/** Round trip assumed for an idle tab whose socket round trip is not measured yet. */
const UNMEASURED_RTT_MS = 100;

/**
 * Conversation keys a shard reports: the first 12 hex characters (48 bits) of each key, enough
 * that two of a shard's keys collide about once in 2^32 reports (and a collision only makes the
 * Worker try that shard first; the shard's own matching still decides), at a quarter of the size.
 */
export const CONVERSATION_KEY_CHARS = 12;
/**
 * At most this many keys per report (~3.8 KB of JSON): the tabs that were assigned a job most
 * recently. A tab's engine holds one conversation (the last it served), so a shard of fewer
 * tabs than this reports every held conversation.
 */
export const MAX_REPORTED_CONVERSATIONS = 256;

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
  /**
   * The conversations this shard's serving tabs hold (truncated keys, shared/scheduling/
   * conversation.ts; most recently assigned tab first, at most MAX_REPORTED_CONVERSATIONS), so a
   * follow-up turn is sent to the shard whose tab can extend it (region-client/
   * conversation-shards.ts). Absent from shards that report none.
   */
  conversations?: string[];
}

/** The truncated form of a conversation key, as reported and as looked up. */
export function reportedKey(key: string): string {
  return key.slice(0, CONVERSATION_KEY_CHARS);
}

export function shardFigures(
  tabs: Iterable<TabRecord>,
  serving: (t: TabRecord) => boolean,
  /** The conversation the tab's engine holds (tab-matcher.ts), if known. */
  holding: (t: TabRecord) => string | null = () => null,
): ShardFigures {
  const out: ShardFigures = { streams: 0, tabs: 0, bestRttMs: {} };
  const held: Array<{ key: string; at: number }> = [];
  for (const tab of tabs) {
    out.tabs += 1;
    if (tab.jobId) out.streams += 1;
    if (!serving(tab)) continue;
    const key = holding(tab);
    if (key) held.push({ key: reportedKey(key), at: tab.lastAssignedAt });
    if (tab.state !== "idle" || tab.jobId) continue;
    const rtt = tab.rttMs ?? UNMEASURED_RTT_MS;
    for (const model of tab.models)
      out.bestRttMs[model] = Math.min(out.bestRttMs[model] ?? Infinity, Math.round(rtt));
  }
  if (held.length > 0) {
    held.sort((a, b) => b.at - a.at);
    out.conversations = [...new Set(held.map((h) => h.key))].slice(0, MAX_REPORTED_CONVERSATIONS);
  }
  return out;
}
