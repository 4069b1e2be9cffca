import type { DropKind } from "./plan.js";

/**
 * What the simulated tabs saw of each job, keyed by job id, in `performance.now()` milliseconds
 * of this one process (tabs and clients share the clock, so differences are exact).
 */
export interface JobTrace {
  /** Every job.assign a tab received for this job. */
  assigns: Array<{ at: number; attempt: number; tab: number; continueFromChars: number }>;
  drop?: { at: number; kind: DropKind; tab: number; deliveredFrames: number };
  /** The silent tab received job.cancel for the job (lease expiry or another failover path). */
  cancelAtSilentTab?: number;
  /** The coordinator closed the silent tab's socket (liveness sweep). */
  closedSilentTab?: number;
  /** A replacement got a `continueFrom` that is not a prefix of the answer. */
  badContinue?: boolean;
}

export class Observations {
  private readonly traces = new Map<string, JobTrace>();

  trace(jobId: string): JobTrace {
    let t = this.traces.get(jobId);
    if (!t) this.traces.set(jobId, (t = { assigns: [] }));
    return t;
  }

  get(jobId: string): JobTrace | undefined {
    return this.traces.get(jobId);
  }
}
