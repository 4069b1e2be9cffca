import type { JobSpec } from "../../shared/protocol/job.js";
import type { Affinity } from "../../shared/scheduling/scheduler.js";
import type { Tier } from "../credits/tiers.js";
import type { JobMeta } from "./job-store.js";

/**
 * A request as the Worker hands it to a Region object: the job a tab will run and what matching
 * and ownership need, but no id. The Region mints the id (it names the region, below), so the
 * Worker builds this once whichever region ends up taking it.
 */
export interface JobRequest extends JobMeta {
  job: Omit<JobSpec, "id">;
  /** The latency tier the key asked for (credits/tiers.ts); it buys a place only when it waits. */
  tier?: Tier;
  /**
   * Spillover (region-client/open-job.ts, shared/scheduling/spillover.ts): take the request only if
   * this region's best offer (expected first token, or whole answer for a non-stream) is at most
   * this many ms; otherwise decline, writing nothing, and say what it offered (`offerMs`).
   */
  acceptUpToMs?: number;
  /**
   * Take the request only onto an idle tab, never queued behind a busy one: the Worker asks so
   * while another shard of the region reported an idle tab for the model (open-job.ts), and asks
   * again without it when none took the request that way. A shard weighs only its own tabs, so
   * otherwise a burst routed by one snapshot queued behind the first shard's busy tabs while
   * another shard's tabs sat idle (bench:scale, 2 shards: TTFT p95 5.2 s, one 100-token answer).
   */
  idleOnly?: boolean;
  /**
   * The follow-up turn's affinity (shared/scheduling/conversation.ts `followUpAffinity`), computed
   * once by the Worker, which routes by it to the shard holding the conversation
   * (region-client/conversation-shards.ts); null for a first turn or a request that is no chat.
   * Absent: not computed (the Region computes it from the messages).
   */
  affinity?: Affinity | null;
  /**
   * Set only by another Region object continuing one of its running jobs here (continuation.ts):
   * the text already delivered, which this object's tab continues from as after an in-shard
   * failover. Never built from a client's request.
   */
  continuation?: { text: string };
}

/**
 * Job ids name their Region object (`wnam`, or `wnam-3` for shard 3: shard-name.ts), so
 * /v1/jobs/:id finds the object holding the job without a lookup.
 */
export function newJobId(region: string): string {
  return `job_${region}_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The object-naming part of a job id (`wnam`, `wnam-3`); null for anything else. */
export function regionOfJobId(id: string): string | null {
  const m = /^job_([a-z]+(?:-[1-9][0-9]{0,2})?)_[0-9a-f]{32}$/.exec(id);
  return m ? (m[1] as string) : null;
}

/** The spec a tab receives: the request's job under the id this region minted. */
export function specOf(request: JobRequest, id: string): JobSpec {
  return { id, ...request.job };
}
