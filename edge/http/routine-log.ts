/**
 * Routine per-job info lines, counted instead of printed: each successful request wrote two info
 * lines, the Worker's `job started` (request id → job, Region, tab) and the Region's `job assigned`
 * (job → tab, which `job started` already says), and in a 20-request burst the lines were 13% of the
 * isolate's busy JavaScript time, plus wrangler's Node process CPU for each line under wrangler dev
 * (docs/scale.md). The Worker's line stays, one per request; the Region's first placement of a job
 * goes to `logRoutine` (log.ts), counted here and printed as one `routine jobs` summary line per
 * isolate at most every SUMMARY_EVERY_MS, with the next line logged after that (no timer: a timer
 * would keep an idle object awake). A reassignment (attempt > 1) is still printed with `log`: it
 * is the trace of a failover.
 */
/** How often at most a summary line is printed, per isolate. */
export const SUMMARY_EVERY_MS = 10_000;

/** Counts routine lines and says when their summary is due. */
export class RoutineCounts {
  private counts = new Map<string, number>();
  private since: number;

  constructor(private readonly now: () => number = Date.now) {
    this.since = now();
  }

  count(msg: string): void {
    this.counts.set(msg, (this.counts.get(msg) ?? 0) + 1);
  }

  /** The summary's fields if one is due (and counts were kept), resetting the counts; else null. */
  due(): Record<string, unknown> | null {
    const now = this.now();
    if (this.counts.size === 0 || now - this.since < SUMMARY_EVERY_MS) return null;
    const summary = { counts: Object.fromEntries(this.counts), sinceMs: now - this.since };
    this.counts.clear();
    this.since = now;
    return summary;
  }
}
