/**
 * A token bucket per signalling socket, kept in the socket's attachment so it survives hibernation:
 * `burst` frames at once (an OFFER and its ICE candidates), refilled at `perSecond`. Heartbeats are
 * answered by auto-response and never reach the object, so they cost nothing. A socket that spends
 * more than its budget is closed with SignalCloseCode.FrameBudget.
 */
export interface FrameBucket {
  /** Frames left. */
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

export interface FrameBudget {
  perSecond: number;
  burst: number;
}

export function fullBucket(budget: FrameBudget, now: number): FrameBucket {
  return { tokens: budget.burst, at: now };
}

/** Spend one frame: the bucket after it, or null when the budget is exhausted. */
export function spendFrame(
  bucket: FrameBucket,
  budget: FrameBudget,
  now: number,
): FrameBucket | null {
  const elapsed = Math.max(0, now - bucket.at);
  const tokens = Math.min(budget.burst, bucket.tokens + (elapsed / 1000) * budget.perSecond);
  if (tokens < 1) return null;
  return { tokens: tokens - 1, at: now };
}
