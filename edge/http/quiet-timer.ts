/**
 * "The next value, or `quiet` once a wait has lasted `ms`", for a loop that waits on one read after
 * another: an SSE response's keep-alive (job-response.ts), a job stream's idle check
 * (region-client/job-stream.ts). A timer of its own for every wait — a setTimeout and a clearTimeout
 * around every token — was a visible share of the coordinator's CPU per token (docs/performance.md,
 * "Per-request CPU (session 8)"). This keeps one timer per loop instead: armed when a wait starts
 * and none is pending; when it fires while a wait that began less than `ms` ago is in progress, it
 * is armed again for the rest. So each wait still ends "quiet" when it has lasted `ms`, as with a
 * timer of its own, and a stream whose reads keep coming sets one timer per `ms`, not one per read.
 * One wait at a time: a new wait replaces the previous one's claim on the timer.
 */
export class QuietTimer {
  private startedAt = 0;
  /** The wait in progress: resolves it "quiet". Null when no wait is in progress. */
  private settle: ((quiet: "quiet") => void) | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ms: number) {}

  /** `next`'s value, or "quiet" if `ms` pass first (`next` stays pending: wait on it again). */
  wait<T>(next: Promise<T>): Promise<T | "quiet"> {
    this.startedAt = Date.now();
    return new Promise<T | "quiet">((resolve, reject) => {
      const settle = (quiet: "quiet") => resolve(quiet);
      this.settle = settle;
      const done = () => {
        if (this.settle === settle) this.settle = null;
      };
      next.then(
        (value) => {
          done();
          resolve(value);
        },
        (err: unknown) => {
          done();
          reject(err);
        },
      );
      if (this.timer === undefined) this.arm(this.ms);
    });
  }

  /** No more waits: drop the timer. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.settle = null;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    this.timer = undefined;
    // Between waits: the next wait arms it again.
    if (!this.settle) return;
    const left = this.startedAt + this.ms - Date.now();
    if (left > 0) return this.arm(left);
    const settle = this.settle;
    this.settle = null;
    settle("quiet");
  }
}
