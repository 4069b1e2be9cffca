import type { QueueState } from "./score.js";

/** A job on a tab as the scheduler estimates it. */
interface LoadJob {
  id: string;
  /** Expected prefill + decode time on this tab (decode to max_tokens: an upper bound). */
  serviceMs: number;
  /** The same when the job was put on the tab, before any re-timing (`retime`, `extendOverdue`). */
  estimateMs: number;
}

/**
 * The work the coordinator put on one tab: the job running and the jobs queued behind it (a tab
 * holds at most one; see Scheduler), each with its expected service time. The expected finish is
 * stored as an absolute time so the index's bounds stay valid as the clock moves.
 */
export class TabLoad {
  private running: (LoadJob & { startedAtMs: number }) | null = null;
  private readonly queued: LoadJob[] = [];

  get jobsAhead(): number {
    return (this.running ? 1 : 0) + this.queued.length;
  }

  get queuedCount(): number {
    return this.queued.length;
  }

  ids(): string[] {
    return [...(this.running ? [this.running.id] : []), ...this.queued.map((j) => j.id)];
  }

  has(jobId: string): boolean {
    return this.running?.id === jobId || this.queued.some((j) => j.id === jobId);
  }

  /** When the running job started on the tab (its dispatch, or when the job ahead of it left). */
  startedAt(jobId: string): number | null {
    return this.running?.id === jobId ? this.running.startedAtMs : null;
  }

  /** A job put on the tab: it runs now if the tab has nothing, else it waits its turn. */
  add(jobId: string, serviceMs: number, nowMs: number): "run" | "queue" {
    if (!this.running) {
      this.running = { id: jobId, serviceMs, estimateMs: serviceMs, startedAtMs: nowMs };
      return "run";
    }
    this.queued.push({ id: jobId, serviceMs, estimateMs: serviceMs });
    return "queue";
  }

  /**
   * A job left the tab (finished, failed, moved, cancelled). When it was the running one, the next
   * queued job starts now; returns that job's id.
   */
  remove(jobId: string, nowMs: number): string | null {
    const i = this.queued.findIndex((j) => j.id === jobId);
    if (i >= 0) {
      this.queued.splice(i, 1);
      return null;
    }
    if (this.running?.id !== jobId) return null;
    const next = this.queued.shift();
    this.running = next ? { ...next, startedAtMs: nowMs } : null;
    return next?.id ?? null;
  }

  /**
   * The running job has outlived its estimate (the tab is slower than believed): expect it to run
   * on for `share` of its estimate from now. Returns the new expected finish of all the work.
   */
  extendOverdue(nowMs: number, share: number): number {
    const r = this.running;
    if (r && r.startedAtMs + r.serviceMs <= nowMs) {
      r.serviceMs = nowMs - r.startedAtMs + Math.max(1, share * r.serviceMs);
    }
    return this.queue().freeAtMs;
  }

  /**
   * Expect the running job to run `share(elapsed ÷ estimate)` of its estimate in all (see
   * RunLengths), when that is known and still ahead.
   */
  retime(nowMs: number, share: (elapsedShare: number) => number | null): void {
    const r = this.running;
    if (!r || !(r.estimateMs > 0)) return;
    const s = share(Math.max(0, nowMs - r.startedAtMs) / r.estimateMs);
    if (s !== null && r.startedAtMs + s * r.estimateMs > nowMs) r.serviceMs = s * r.estimateMs;
  }

  /** The running job, if it is `jobId`: when it started and what it was estimated to take. */
  runningJob(jobId: string): { startedAtMs: number; estimateMs: number } | null {
    return this.running?.id === jobId ? this.running : null;
  }

  /** When the running job is expected to end (0 when none runs). */
  runningEndMs(): number {
    return this.running ? this.running.startedAtMs + this.running.serviceMs : 0;
  }

  queue(): QueueState {
    if (!this.running) return { jobsAhead: 0, freeAtMs: 0 };
    let freeAtMs = this.running.startedAtMs + this.running.serviceMs;
    for (const j of this.queued) freeAtMs += j.serviceMs;
    return { jobsAhead: this.jobsAhead, freeAtMs };
  }
}
