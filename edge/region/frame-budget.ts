/**
 * A token bucket: `burst` frames at once, refilled at `perSecond`. Each tab socket has one for all
 * its frames and a smaller one for `status` frames (tab-channel.ts); a socket that runs a bucket dry
 * is closed with CloseCode.RateLimited.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Take one token; false when the bucket is empty. */
  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface FrameBudget {
  /** All frames of a socket (pings are answered without waking the object and are not counted). */
  framesPerSecond: number;
  frameBurst: number;
  /** `status` frames (heartbeat every interval, one per state change). */
  statusPerSecond: number;
  statusBurst: number;
}
