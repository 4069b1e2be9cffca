import type { JobRow } from "./job-store.js";
import type { FinishReason, JobError } from "../../shared/protocol/job.js";
import type { JobEvent } from "./job-events.js";
import type { TabRecord } from "./tab-registry.js";

/** A finished job's done event, without its type. */
export type JobDone = Omit<Extract<JobEvent, { type: "done" }>, "type">;

/** How a job moves on (job-machine.ts `redispatch`). */
export interface RedispatchOptions {
  /** How long it waits for a tab when none takes it at once (REDISPATCH_WAIT_MS by default). */
  waitMs?: number;
  /**
   * A failover (counted; it may continue on another Region object); false for a job its tab could
   * not start, which is no failover.
   */
  failedOver?: boolean;
  /** With no tab here to take it at once, the job ends rather than waits. */
  orFail?: boolean;
}

/**
 * The job machine's transitions, as the parts that read what a job's attempt sends
 * (embedding-frames.ts, remote-following.ts) call them. The machine (job-machine.ts) makes every
 * change of a job's state; those parts say when, for the frames or events they read, as its own
 * frame handling does. Each part takes the few it uses.
 */
export interface JobTransitions {
  /** Whether `tab` serves `jobId` now (not a moved or finished attempt of it). */
  isCurrent(tab: TabRecord, jobId: string): boolean;
  /** The attempt failed with `cause`: the job moves to another tab, or waits, or ends. */
  redispatch(jobId: string, cause: JobError, options?: RedispatchOptions): Promise<void>;
  /** The coordinator ends the answer itself (its budget is spent, or a stop string). */
  finishHere(jobId: string, reason: FinishReason, why: string): Promise<void>;
  /** The answer is whole: the job is finished, its readers told, its record settled. */
  finish(jobId: string, done: JobDone): Promise<void>;
  /** The tab takes a waiting job if it is free; idle verifiers get waiting audits. */
  offerWork(tab: TabRecord): Promise<void>;
  /**
   * `answeredBy` finished an embedding job with its vectors: tabs that said its request was
   * invalid were wrong, if `answeredBy` is a witness to count (job-machine.ts).
   */
  falseInvalidReports(row: JobRow, answeredBy: TabRecord): Promise<void>;
}
