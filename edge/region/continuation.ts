import { z } from "zod";
import {
  FinishReasonSchema,
  JobErrorSchema,
  UsageSchema,
  type JobError,
  type JobSpec,
  type Usage,
} from "../../shared/protocol/job.js";
import type { JobEvent } from "./job-events.js";
import type { JobRequest } from "./job-request.js";
import type { Shard } from "./shard-name.js";
import type { JobRow, JobStore } from "./job-store.js";
import { completionBounds, promptTokenCap, utf8Bytes } from "./usage-bounds.js";

/**
 * A running job continued on another Region object (docs/failure-handling.md, "Failover across
 * shards"). The origin shard keeps the job; when its tab leaves and none of its own tabs can take
 * over, it opens a continuation job on a sibling shard (then another hint) and reads that job's
 * events as if they were a tab's frames. This file holds what both ends agree on: how the origin
 * names the remote attempt, how the continuation is asked for and recognised, and the checks the
 * origin applies to what comes back.
 */

/** The origin's `node_id` for an attempt running as a job on another object. */
const REMOTE_NODE = "remote:";

export function remoteNode(remoteJobId: string): string {
  return `${REMOTE_NODE}${remoteJobId}`;
}

/** The remote job an origin attempt reads, or null when the attempt runs on a tab here. */
export function remoteJobOf(nodeId: string | null): string | null {
  return nodeId?.startsWith(REMOTE_NODE) ? nodeId.slice(REMOTE_NODE.length) : null;
}

/**
 * A continuation's `request_id` names the job it continues. A client's `x-request-id` cannot take
 * this form (edge/http/request-id.ts allows no `:`), so it marks a continuation durably, with no
 * schema change, and survives the remote object's eviction.
 */
const CONTINUES = "continues:";

/**
 * Whether a job may be handed to another object: never a continuation (one hop at most: the shard
 * running a continuation fails over among its own tabs only), never twice (an origin that already
 * moved the job once keeps it among its own tabs), and not an embedding job (its vectors are kept
 * by the object that runs it).
 */
export function mayContinueElsewhere(row: JobRow, tried: readonly string[]): boolean {
  if (row.request_id.startsWith(CONTINUES) || row.kind === "embedding") return false;
  return !tried.some((t) => remoteJobOf(t) !== null);
}

/**
 * The request that opens the continuation of `row` elsewhere: the same job (without the direct
 * path: the continuation's text comes back over the relay), the text so far to continue from, and
 * the origin's matching facts, owner and answer mode. The remote shard charges the text so far
 * against max_tokens exactly as an in-shard failover does (answer-budget.ts). The client pays
 * once, through the origin's job: the continuation carries no `holdId`, so it settles nothing with
 * the ledger (credits/region-credits.ts); it keeps the origin's queue class (priority).
 */
export function continuationRequest(jobs: JobStore, row: JobRow): JobRequest {
  const { id, direct, ...job } = jobs.spec(row);
  void id;
  void direct;
  return {
    job,
    match: jobs.match(row),
    priority: row.priority,
    requestId: `${CONTINUES}${row.id}`,
    owner: row.owner,
    // The origin reads it; a broken read is resumed, and an evicted origin resubscribes on restore.
    detachGraceMs: Math.max(row.detach_grace_ms, 10_000),
    ...(row.reading ? { reading: JSON.parse(row.reading) as JobRequest["reading"] } : {}),
    continuation: { text: row.text },
  };
}

/** A remote job as the origin reads it (edge/region-client/continue-elsewhere.ts). */
export interface RemoteJob {
  readonly jobId: string;
  /** The next event; null once stopped. A done or error event is the last. */
  next(): Promise<JobEvent | null>;
  /** Stop reading (the remote job itself runs on until it ends or is cancelled). */
  stop(): Promise<void>;
}

/** How a Region object reaches other Region objects to continue its jobs there. */
export interface ContinuationPort {
  /**
   * Open `request` (a continuation) on a sibling shard of this hint, else on another hint by the
   * Worker's spillover ranking; null when none has a tab for it now.
   */
  open(request: JobRequest): Promise<RemoteJob | null>;
  /** Read a remote job again from character `after` of its text (after this object's restart). */
  resume(remoteJobId: string, after: number, owner: string | null): RemoteJob;
  cancel(remoteJobId: string, reason: string, owner: string | null): Promise<void>;
  /**
   * For a pass over the waiting line (waiting-moves.ts): a planner over the routing view as this
   * isolate caches it, read once per pass and never per job.
   */
  movePlanner(): Promise<MovePlanner>;
  /**
   * Ask the object `target` to continue `request` now, taking it only within the request's
   * `acceptUpToMs`; null when it declines (it then wrote nothing).
   */
  openOn(target: Shard, request: JobRequest): Promise<RemoteJob | null>;
}

/**
 * Where a job waiting here should move (shared/scheduling/spillover.ts `waitingMove`), given its
 * request and its expected objective if it stays (`hereMs`); null: it stays.
 */
export type MovePlanner = (
  request: JobRequest,
  hereMs: number,
  nowMs: number,
) => { target: Shard; acceptUpToMs: number } | null;

/**
 * The events the origin accepts from a remote job: they crossed two objects, so they are parsed
 * like any frame (a delta's text is then bounded and checked as a tab's, text-delivery.ts).
 * Log-probabilities of the remote part are not relayed: after a move, as after any failover, a
 * job's logprobs are null.
 */
const RemoteEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("delta"), text: z.string().max(1_048_576) }),
  z.object({ type: z.literal("logprobs") }),
  z.object({ type: z.literal("restart") }),
  z.object({
    type: z.literal("done"),
    finishReason: FinishReasonSchema,
    usage: UsageSchema,
  }),
  z.object({ type: z.literal("error"), error: JobErrorSchema }),
]);
export type RemoteEvent = z.infer<typeof RemoteEventSchema>;

export function parseRemoteEvent(event: unknown): RemoteEvent | JobError {
  const parsed = RemoteEventSchema.safeParse(event);
  if (parsed.success) return parsed.data;
  return { code: "node_gone", message: "the shard continuing the job sent an invalid event" };
}

/**
 * The remote job's usage of the whole answer (it counts the text it continued from as any
 * failover does), held to what the origin itself observed: completion tokens within the bounds of
 * the text the origin holds and max_tokens, prompt tokens within the prompt's cap.
 */
export function remoteUsage(usage: Usage, spec: JobSpec, text: string): Usage {
  const c = completionBounds(utf8Bytes(text), spec.sampling.max_tokens);
  // No text is no completion tokens, as for a tab here (usage-bounds.ts `boundUsage`).
  const completion = text ? Math.min(c.max, Math.max(c.min, usage.completion_tokens)) : 0;
  const prompt = Math.min(promptTokenCap(spec), Math.max(0, usage.prompt_tokens));
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
}

/**
 * What the origin records when its remote attempt fails: the remote job's own error (already the
 * usual failover error, e.g. "the serving tab left …; no other tab could take over in time"),
 * with a code that says the serving side went away unless it named a fault of a tab.
 */
export function remoteCause(error: JobError): JobError {
  const keep = ["engine_error", "device_lost", "node_gone", "model_not_served"];
  return {
    code: keep.includes(error.code) ? error.code : "node_gone",
    message: error.message.slice(0, 300),
  };
}
