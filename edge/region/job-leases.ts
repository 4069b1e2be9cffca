import type { RegionConfig } from "./region-config.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TimerTable } from "./timer-table.js";

/**
 * The lease that guards every assignment: a tab must accept within `acceptMs`, then keep sending
 * within `leaseMs`. The lease timer is not moved on every delta (that would be a storage write per
 * frame); the last sign of life is kept in memory and, when the timer fires, a job that was active
 * since gets the rest of its lease instead. After eviction the memory is empty and the timer
 * simply expires, which at worst moves a live job one lease early.
 */
export class JobLeases {
  /** Last sign of life (assignment, accept or delta) per job. */
  private readonly activeAt = new Map<string, number>();

  constructor(
    private readonly timers: TimerTable<RegionTimer>,
    private readonly config: Pick<RegionConfig, "leaseMs">,
  ) {}

  async arm(jobId: string, ms: number): Promise<void> {
    this.activeAt.set(jobId, Date.now());
    await this.timers.set(jobTimer("lease", jobId), Date.now() + ms);
  }

  /** A delta arrived: the lease runs from now (kept in memory; the timer catches up lazily). */
  async extend(jobId: string): Promise<void> {
    if (!this.activeAt.has(jobId)) await this.arm(jobId, this.config.leaseMs);
    else this.activeAt.set(jobId, Date.now());
  }

  /** The job left its tab or ended: no lease any more. */
  async drop(jobId: string): Promise<void> {
    this.activeAt.delete(jobId);
    await this.timers.clear(jobTimer("lease", jobId));
  }

  /**
   * The lease timer fired. A streaming job heard from within the lease is re-armed for the rest of
   * it (false); otherwise the lease has run out (true) and the caller moves the job.
   */
  async expired(jobId: string, streaming: boolean): Promise<boolean> {
    const active = this.activeAt.get(jobId);
    if (streaming && active !== undefined && Date.now() - active < this.config.leaseMs) {
      await this.timers.set(jobTimer("lease", jobId), active + this.config.leaseMs);
      return false;
    }
    return true;
  }
}
