import { log } from "./log.js";

/**
 * Refused requests (4xx) are logged one by one only while their address is within a budget: a
 * flood of bad requests must not become a flood of log lines, which cost more CPU than the
 * refusals themselves (bench:abuse, past wrangler's proxy: a flood without a key answered 401 was
 * 1.46× the quiet p95 with a line per refusal, 1.20× without). Each address gets REFUSAL_LOG_BURST
 * lines at once, then REFUSAL_LOG_PER_MIN a minute; past that, one `warn` line per episode says how
 * many were not logged. In this isolate's memory, bounded in addresses (oldest forgotten first).
 */
export const REFUSAL_LOG_BURST = 20;
export const REFUSAL_LOG_PER_MIN = 10;
const MAX_ADDRESSES = 10_000;

interface Budget {
  tokens: number;
  at: number;
  /** Refusals not logged since the budget ran dry. */
  suppressed: number;
}

type Sink = typeof log;

export class RefusalLog {
  private readonly budgets = new Map<string, Budget>();
  private readonly perMs = REFUSAL_LOG_PER_MIN / 60_000;

  constructor(
    private readonly sink: Sink = log,
    private readonly now: () => number = Date.now,
  ) {}

  /** Log one refused request from `ip`, or count it when the address's budget is spent. */
  refused(ip: string, fields: Record<string, unknown>): void {
    const now = this.now();
    const b = this.budgets.get(ip) ?? { tokens: REFUSAL_LOG_BURST, at: now, suppressed: 0 };
    b.tokens = Math.min(REFUSAL_LOG_BURST, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens >= 1) {
      if (b.suppressed > 0) {
        this.sink("warn", "refused requests not logged one by one", {
          ip,
          suppressed: b.suppressed,
        });
        b.suppressed = 0;
      }
      b.tokens -= 1;
      this.sink("info", "request failed", fields);
    } else if (b.suppressed++ === 0) {
      this.sink("warn", "refused requests from this address over the log budget", {
        ip,
        perMinute: REFUSAL_LOG_PER_MIN,
      });
    }
    // Re-inserted so the map's order is least recently refused first.
    this.budgets.delete(ip);
    this.budgets.set(ip, b);
    if (this.budgets.size > MAX_ADDRESSES) {
      const oldest = this.budgets.keys().next().value;
      if (oldest !== undefined) this.budgets.delete(oldest);
    }
  }
}
