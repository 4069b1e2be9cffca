import { AddressBuckets, type AddressBucket } from "./address-buckets.js";
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

interface Budget extends AddressBucket {
  /** Refusals not logged since the budget ran dry. */
  suppressed: number;
}

type Sink = typeof log;

export class RefusalLog {
  private readonly budgets = new AddressBuckets<Budget>(REFUSAL_LOG_BURST, REFUSAL_LOG_PER_MIN);

  constructor(
    private readonly sink: Sink = log,
    private readonly now: () => number = Date.now,
  ) {}

  /** Log one refused request from `ip`, or count it when the address's budget is spent. */
  refused(ip: string, fields: Record<string, unknown>): void {
    const now = this.now();
    // Kept when full again, so what was not logged is still counted in the next line.
    const b = this.budgets.get(ip, now) ?? { tokens: REFUSAL_LOG_BURST, at: now, suppressed: 0 };
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
    this.budgets.put(ip, b);
  }
}
