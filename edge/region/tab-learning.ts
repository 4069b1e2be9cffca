import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import type { RegionCredits } from "../credits/region-credits.js";
import { servedConversation } from "../../shared/scheduling/conversation.js";
import { sha256Hex } from "./conversation-hash.js";
import type { JobStore } from "./job-store.js";
import type { TabMatcher } from "./tab-matcher.js";
import type { TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";

/**
 * What the region learns from the jobs its tabs serve — the round trip of each assignment, the
 * speeds a finished job shows — and the credit a tab earns. All of it is measured here; nothing a
 * tab claims about itself is taken as a measurement.
 */
export class TabLearning {
  /** When each running job was accepted, and by which tab (the Region's clock), until learned. */
  private readonly accepts = new Map<string, { tabId: string; at: number }>();

  constructor(
    private readonly jobs: JobStore,
    private readonly trust: TabTrust,
    private readonly matcher: TabMatcher,
    private readonly region: RegionHint,
    /** The credit ledger (edge/credits); absent, credit stays in this Region's count only. */
    private readonly credits?: RegionCredits,
  ) {}

  /** RTT sample: job.assign → job.accept, smoothed. */
  noteRtt(tab: TabRecord): void {
    const row = tab.jobId ? this.jobs.get(tab.jobId) : undefined;
    if (!row?.dispatched_at || this.waited(tab, row.id, row.dispatched_at)) return;
    this.accepts.set(row.id, { tabId: tab.tabId, at: Date.now() });
    const sample = Date.now() - row.dispatched_at;
    tab.rttMs = tab.rttMs === null ? sample : tab.rttMs * 0.7 + sample * 0.3;
  }

  /** Learn the tab's real speed from a finished job (time to first token, decode rate). */
  observe(
    tab: TabRecord,
    jobId: string,
    usage: { prompt_tokens: number; completion_tokens: number },
    reportedPrefillMs?: number,
  ): void {
    const row = this.jobs.get(jobId);
    const accept = this.accepts.get(jobId);
    this.accepts.delete(jobId);
    // A hedge that won never had its accept taken: no bound from below for it.
    const acceptedAt = accept?.tabId === tab.tabId ? accept.at : undefined;
    if (!row?.dispatched_at || !row.first_token_at) return;
    // A job that waited behind another started when the tab finished that one, which the region
    // knows only to half a round trip: its time to first token is not a measurement.
    if (this.waited(tab, jobId, row.dispatched_at)) return;
    // A continuation's first token came after the delivered text too — prefilled, or replayed at
    // decode speed under a grammar — which its prompt count leaves out: no measurement of either.
    if (row.attempt_start_chars > 0) return;
    const facts = this.jobs.match(row);
    const ttftMs = row.first_token_at - row.dispatched_at;
    this.matcher.observe(tab.tabId, {
      clientLocation: facts.clientLocation ?? REGION_CENTRES[this.region],
      // Timed here, from dispatch to first delta: the tab's socket is the only network in it.
      timedAt: "tab",
      promptTokens: usage.prompt_tokens,
      ttftMs,
      // The tab's own prefill time is a claim, held to what the region measured: never more than
      // the whole time to first token, nor less than from its accept to its first token (the tab
      // times its prefill from just after it sends the accept; less would make it look faster).
      ...(reportedPrefillMs !== undefined
        ? {
            prefillMs: prefillWithin(
              reportedPrefillMs,
              ttftMs,
              row.first_token_at - (acceptedAt ?? row.first_token_at),
            ),
          }
        : {}),
      completionTokens: usage.completion_tokens,
      decodeMs: Date.now() - row.first_token_at,
    });
  }

  /**
   * The tab's engine now holds this chat (its messages and the answer it wrote) for a follow-up
   * turn to extend: remembered as a hash. Only when the whole answer is this tab's: after a
   * failover the engine's conversation is not the one the client has.
   */
  async remember(tab: TabRecord, jobId: string): Promise<void> {
    const row = this.jobs.get(jobId);
    if (!row || row.attempt_start_chars !== 0) return;
    const input = this.jobs.spec(row).input;
    if (input.kind !== "chat") return;
    const held = await servedConversation(input.messages, row.text, sha256Hex);
    this.matcher.served(tab.tabId, held.key, held.tokens, Date.now());
  }

  private waited(tab: TabRecord, jobId: string, dispatchedAt: number): boolean {
    const started = this.matcher.startedAt(tab.tabId, jobId);
    return started !== null && started > dispatchedAt;
  }

  /**
   * Credit the finishing tab's identity with the completion tokens it generated — the
   * coordinator's bounded count of its own part (usage-bounds.ts `ownTokens`), never the tab's
   * claim; after a failover the earlier text belongs to the tabs that wrote it — times the weight
   * of the latency tier it delivered (region-credits.ts). Returns the credit (null when the job is
   * unknown; 0 while the identity is quarantined) so the caller can tell the tab; the ledger gets
   * the same figure (withheld there when quarantined).
   */
  credit(tab: TabRecord, jobId: string, ownTokens: number): number | null {
    const row = this.jobs.get(jobId);
    if (!row) return null;
    const weight = this.credits?.weightOf(row, this.jobs.match(row)) ?? 1;
    const credit = Math.round(ownTokens * weight * 1000) / 1000;
    const added = this.trust.addCredit(tab.tabId, credit);
    const quarantined = this.trust.state(tab.tabId) === "quarantined";
    this.credits?.earned(tab, { jobId, credit, tokens: ownTokens, quarantined });
    return added;
  }

  /** A tab joined: the ledger tells it its balance. */
  joined(tab: TabRecord): void {
    this.credits?.joined(tab);
  }

  /** A job ended: settle what its key set aside for a paid place in the queue. */
  settled(jobId: string): void {
    this.accepts.delete(jobId);
    this.credits?.settled(this.jobs.get(jobId));
  }
}

/**
 * A tab's claimed prefill time within what the region measured: at most the whole time to first
 * token, at least the time from its accept reaching the region to its first token (0 when unknown).
 */
export function prefillWithin(claimedMs: number, ttftMs: number, acceptToFirstMs: number): number {
  return Math.min(Math.max(claimedMs, acceptToFirstMs), ttftMs);
}
