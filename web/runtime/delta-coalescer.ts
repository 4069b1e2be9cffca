import { browserTimers, type Timers } from "./timers.js";

/**
 * Token deltas are coalesced into frames: one Durable Object handles about 1,000 messages/s, so a
 * stream may send at most one frame per `intervalMs` (50 ms ≈ 20 frames/s). The first delta after a
 * quiet period goes out at once (time-to-first-token is what clients feel most); later ones wait
 * for the interval. A large buffer is sent early so a frame stays far below the frame size limit.
 */
/**
 * The most text the coalescer puts in one frame by default: far below the wire's bound for a
 * `job.delta` (64 Ki UTF-16 units, JobDeltaSchema) and MAX_FRAME_BYTES even as 3-byte UTF-8.
 */
export const DELTA_PIECE_CHARS = 16 * 1024;

/**
 * `text` cut into pieces of at most `max` UTF-16 units for `job.delta` frames (a resend of a long
 * answer), never between the two halves of a surrogate pair, so every piece is valid text.
 */
export function deltaPieces(text: string, max = DELTA_PIECE_CHARS): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length;) {
    let end = Math.min(text.length, at + max);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && end - at > 1 && last >= 0xd800 && last <= 0xdbff) end--;
    pieces.push(text.slice(at, end));
    at = end;
  }
  return pieces;
}

export interface DeltaCoalescerOptions {
  intervalMs?: number;
  maxChars?: number;
  timers?: Timers;
}

export class DeltaCoalescer {
  private buffer = "";
  private seq = 0;
  private lastEmit = Number.NEGATIVE_INFINITY;
  private timer: number | null = null;
  private readonly intervalMs: number;
  private readonly maxChars: number;
  private readonly timers: Timers;

  constructor(
    private readonly emit: (text: string, seq: number) => void,
    opts: DeltaCoalescerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 50;
    this.maxChars = opts.maxChars ?? DELTA_PIECE_CHARS;
    this.timers = opts.timers ?? browserTimers;
  }

  push(text: string): void {
    if (!text) return;
    this.buffer += text;
    if (this.buffer.length >= this.maxChars) return this.flush();
    if (this.timer !== null) return;
    const wait = this.lastEmit + this.intervalMs - this.timers.now();
    if (wait <= 0) return this.flush();
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  /** Send whatever is buffered now (end of generation). */
  flush(): void {
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.buffer) return;
    const text = this.buffer;
    this.buffer = "";
    this.lastEmit = this.timers.now();
    this.emit(text, this.seq++);
  }

  /** Drop buffered text without sending it (the job is gone). */
  discard(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.buffer = "";
  }

  /** Number of frames emitted so far. */
  get frames(): number {
    return this.seq;
  }
}
