/**
 * Rests a tab that keeps failing: more than `maxFailures` failures inside `windowMs` and the tab is
 * not matched for `restMs`. Failures are things the tab is to blame for (job errors, missed
 * leases), not clients cancelling.
 */
export interface BreakerPolicy {
  maxFailures: number;
  windowMs: number;
  restMs: number;
}

export const DEFAULT_BREAKER: BreakerPolicy = { maxFailures: 5, windowMs: 60_000, restMs: 300_000 };

export class CircuitBreaker {
  private readonly failures = new Map<string, number[]>();
  private readonly restingUntil = new Map<string, number>();

  constructor(private readonly policy: BreakerPolicy = DEFAULT_BREAKER) {}

  /** Record a failure; returns true when this failure tripped the breaker. */
  recordFailure(nodeId: string, now = Date.now()): boolean {
    const recent = (this.failures.get(nodeId) ?? []).filter((t) => now - t < this.policy.windowMs);
    recent.push(now);
    this.failures.set(nodeId, recent);
    if (recent.length > this.policy.maxFailures) {
      this.restingUntil.set(nodeId, now + this.policy.restMs);
      this.failures.delete(nodeId);
      return true;
    }
    return false;
  }

  isResting(nodeId: string, now = Date.now()): boolean {
    const until = this.restingUntil.get(nodeId);
    if (until === undefined) return false;
    if (now >= until) {
      this.restingUntil.delete(nodeId);
      return false;
    }
    return true;
  }

  forget(nodeId: string): void {
    this.failures.delete(nodeId);
  }
}
