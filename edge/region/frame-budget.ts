/**
 * A token bucket: `burst` frames at once, refilled at `perSecond`. Each tab socket has one for all
 * its frames and a smaller one for `status` frames (SocketBudget below, applied by the socket's tab
 * link); a socket that runs a bucket dry is closed with CloseCode.RateLimited.
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

/** Status frames a socket may send: a heartbeat each interval and one per state change. */
const STATUS_PER_SECOND = 5;
const STATUS_BURST = 30;

/**
 * One contributor socket's budget: all its frames, and within them its `status` frames. Applied
 * by the socket's tab link (edge/tab-link) before a frame reaches the Region object.
 */
export class SocketBudget {
  private readonly frames: TokenBucket;
  private readonly status: TokenBucket;

  constructor(limits: { tabFramesPerSecond: number; tabFrameBurst: number }) {
    this.frames = new TokenBucket(limits.tabFramesPerSecond, limits.tabFrameBurst);
    this.status = new TokenBucket(STATUS_PER_SECOND, STATUS_BURST);
  }

  /**
   * Take one frame; false when a bucket ran dry. Taken before parsing, so a flood costs one
   * comparison per frame: status frames are recognised by their prefix (a real status frame starts
   * so; a status frame spelled otherwise is only counted as a frame, and the Region parses it).
   */
  take(raw: string | ArrayBuffer): boolean {
    const isStatus = typeof raw === "string" && raw.startsWith('{"type":"status"');
    return this.frames.take() && (!isStatus || this.status.take());
  }
}
