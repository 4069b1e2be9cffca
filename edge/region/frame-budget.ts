/**
 * A token bucket: `burst` frames at once, refilled at `perSecond`. Each tab socket has one for all
 * its frames, applied by the socket's tab link in the Worker (SocketBudget below), and a smaller
 * one for its `status` frames, applied by the Region once the frame is parsed (`statusBucket`,
 * tab-channel.ts); a socket that runs a bucket dry is closed with CloseCode.RateLimited.
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
    this.refill(now);
    // A refill summed from pieces can come to 0.9999999999999999 where a whole token is due.
    if (this.tokens < 1 - 1e-9) return false;
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  /** When the next token can be taken (`now` if one can be already), in whole ms. */
  readyAt(now = Date.now()): number {
    this.refill(now);
    return this.tokens >= 1 - 1e-9
      ? now
      : now + Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
  }
}

/** Status frames a socket may send: a heartbeat each interval and one per state change. */
const STATUS_PER_SECOND = 5;
const STATUS_BURST = 30;

/**
 * A socket's budget of `status` frames (each may change the tab's models or idle state, which the
 * Region reports to the Directory). Counted by the Region on the parsed frame, not by the tab link
 * on the frame's text: the link used to recognise a status frame by its prefix
 * ('{"type":"status"'), and the same frame with its keys in another order, a space, an escaped
 * key ("\u0074ype") or a second "type" key (JSON keeps the last) parsed as `status` and was only
 * counted as a frame (200/s, so one tab drove ~200 Directory writes a second). No text check is
 * sound against all of JSON's spellings; the parse the Region does anyway is, and costs nothing
 * more. The Region sees the link's frames bunched by transit (a batch arrives at once), which can
 * only close a tab already sending near this budget; an honest tab sends a heartbeat every status
 * interval and one frame per state change, far below 30 at once.
 */
export function statusBucket(now = Date.now()): TokenBucket {
  return new TokenBucket(STATUS_PER_SECOND, STATUS_BURST, now);
}

/**
 * One contributor socket's budget of frames of any kind, applied by the socket's tab link
 * (edge/tab-link) before a frame reaches the Region object, before parsing: a flood costs one
 * subtraction per frame.
 */
export class SocketBudget {
  private readonly frames: TokenBucket;

  constructor(limits: { tabFramesPerSecond: number; tabFrameBurst: number }) {
    this.frames = new TokenBucket(limits.tabFramesPerSecond, limits.tabFrameBurst);
  }

  /** Take one frame; false when the bucket ran dry. */
  take(): boolean {
    return this.frames.take();
  }
}
