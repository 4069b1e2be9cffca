import type { RegionConfig } from "./region-config.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TimerTable } from "./timer-table.js";

/** What the lease remembers of a job, in memory only. */
interface Lease {
  /** Last sign of life: assignment, accept, progress or delta. */
  activeAt: number;
  /** Before the first token: when the job was accepted, and how long its prefill may take. */
  prefill: { acceptedAt: number; expectedMs: number } | null;
}

/**
 * The lease that guards every assignment: a tab must accept within `acceptMs`, then keep sending
 * within `leaseMs`. Before its first token a tab is prefilling, which on a slow GPU takes a minute
 * or more: the lease then also covers the prefill expected for that tab and prompt (silent tabs
 * that speak protocol 1 get that long), and `job.progress` frames count as signs of life like
 * deltas do, up to `prefillMaxMs`. A tab that vanished is found by the liveness sweep (silence of
 * its socket), not by a long first token. After the first token only text renews the lease, and the
 * attempt has a deadline (`pastDeadline`).
 *
 * The lease timer is not moved on every frame (that would be a storage write per frame); the last
 * sign of life is kept in memory and, when the timer fires, a job that was active since gets the
 * rest of its lease instead. After eviction the memory is empty and the timer simply expires, which
 * at worst moves a live job one lease early.
 */
export class JobLeases {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly timers: TimerTable<RegionTimer>,
    private readonly config: Pick<RegionConfig, "leaseMs" | "prefillMaxMs">,
  ) {}

  async arm(jobId: string, ms: number): Promise<void> {
    this.leases.set(jobId, { activeAt: Date.now(), prefill: null });
    await this.timers.set(jobTimer("lease", jobId), Date.now() + ms);
  }

  /** The tab accepted: it has the lease plus the prefill expected of it to send a first token. */
  async accepted(jobId: string, expectedPrefillMs: number): Promise<void> {
    const now = Date.now();
    const lease: Lease = {
      activeAt: now,
      prefill: {
        acceptedAt: now,
        expectedMs: Math.min(expectedPrefillMs, this.config.prefillMaxMs),
      },
    };
    this.leases.set(jobId, lease);
    await this.timers.set(jobTimer("lease", jobId), this.dueAt(lease));
  }

  /**
   * The tab reports that it is still prefilling (kept in memory; the timer catches up lazily).
   * Only before its first token: after it, text is the one sign of life, or progress frames alone
   * would hold a job for ever.
   */
  async progress(jobId: string): Promise<void> {
    const lease = this.leases.get(jobId);
    if (!lease) await this.arm(jobId, this.config.leaseMs);
    else if (lease.prefill) lease.activeAt = Date.now();
  }

  /** A delta arrived: the prefill is over and the lease runs from now. */
  async extend(jobId: string): Promise<void> {
    const lease = this.leases.get(jobId);
    if (!lease) await this.arm(jobId, this.config.leaseMs);
    else {
      lease.activeAt = Date.now();
      lease.prefill = null;
    }
  }

  /**
   * Whether an attempt whose first token came at `firstTokenAt` is past its deadline: one lease per
   * token the answer may have, plus one (`(maxTokens + 1) × leaseMs`). The lease already asks a
   * writing tab for text at least once a lease, so this takes nothing from a tab that writes a
   * token each time (the slowest decode the lease lets through); what it ends is a tab keeping the
   * lease alive with a character at a time, which the answer's byte cap (128 per token) would
   * otherwise let run 128 times as long. Checked when the lease timer fires, so within a lease.
   */
  pastDeadline(firstTokenAt: number | null, maxTokens: number): boolean {
    if (firstTokenAt === null) return false;
    return Date.now() >= firstTokenAt + (maxTokens + 1) * this.config.leaseMs;
  }

  /** The job left its tab or ended: no lease any more. */
  async drop(jobId: string): Promise<void> {
    this.leases.delete(jobId);
    await this.timers.clear(jobTimer("lease", jobId));
  }

  /**
   * The lease timer fired. A streaming job still within its lease is re-armed for the rest of it
   * (false); otherwise the lease has run out (true) and the caller moves the job.
   */
  async expired(jobId: string, streaming: boolean): Promise<boolean> {
    const lease = this.leases.get(jobId);
    if (!streaming || !lease) return true;
    const due = this.dueAt(lease);
    if (Date.now() >= due) return true;
    await this.timers.set(jobTimer("lease", jobId), due);
    return false;
  }

  /**
   * When the lease runs out: `leaseMs` after the last sign of life; before the first token, not
   * before the expected prefill is over, and never later than `prefillMaxMs` after the accept.
   */
  private dueAt(lease: Lease): number {
    const { leaseMs, prefillMaxMs } = this.config;
    const silence = lease.activeAt + leaseMs;
    if (!lease.prefill) return silence;
    const { acceptedAt, expectedMs } = lease.prefill;
    return Math.min(
      Math.max(silence, acceptedAt + expectedMs + leaseMs),
      acceptedAt + prefillMaxMs + leaseMs,
    );
  }
}
