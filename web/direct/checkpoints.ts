import type { JobCheckpoint } from "../../shared/protocol/node-messages.js";
import { sha256Hex } from "../../shared/protocol/sha256.js";
import { browserTimers, type Timers } from "../runtime/timers.js";

/**
 * The relay-light direct path, tab side (protocol 7, docs/embed.md). While a job's caller receives
 * every piece over the data channel, the coordinator needs the text only to keep it (failover,
 * resume, usage, audits), not to forward it token by token: the tab sends it in checkpoints, one
 * `job.checkpoint` every `everyPieces` engine pieces (≈ tokens) or `everyMs` after the first piece
 * of a batch, whichever comes first, instead of a coalesced `job.delta` every 50 ms.
 *
 * The first piece of a job goes out at once, so the coordinator's time to first token stays true.
 * The interval must stay well below the coordinator's stream lease (LEASE_MS, 30 s by default):
 * checkpoints are the job's only sign of life while it streams.
 */
export interface CheckpointPolicy {
  everyPieces: number;
  everyMs: number;
  /** A batch larger than this goes at once (a frame stays far below the frame size limit). */
  maxChars: number;
}

export const DEFAULT_CHECKPOINTS: CheckpointPolicy = {
  everyPieces: 128,
  everyMs: 1000,
  maxChars: 16 * 1024,
};

/** The frame for one batch: its offset in this attempt's answer and the SHA-256 of its text. */
export function checkpointFrame(jobId: string, offset: number, text: string): JobCheckpoint {
  return { type: "job.checkpoint", jobId, offset, text, sha256: sha256Hex(text) };
}

export class CheckpointBatcher {
  private pending = "";
  private pieces = 0;
  private started = false;
  private timer: number | null = null;
  private emitted = 0;
  private readonly policy: CheckpointPolicy;
  private readonly timers: Timers;

  constructor(
    /** Sends one batch (the caller numbers its offset and builds the frame). */
    private readonly emit: (text: string) => void,
    opts: Partial<CheckpointPolicy> & { timers?: Timers } = {},
  ) {
    const { timers, ...policy } = opts;
    this.policy = { ...DEFAULT_CHECKPOINTS, ...policy };
    this.timers = timers ?? browserTimers;
  }

  push(piece: string): void {
    if (!piece) return;
    this.pending += piece;
    this.pieces += 1;
    if (!this.started || this.pieces >= this.policy.everyPieces) return this.flush();
    if (this.pending.length >= this.policy.maxChars) return this.flush();
    this.timer ??= this.timers.setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.policy.everyMs);
  }

  /** Send what is batched now (end of the answer, or the data channel closed). */
  flush(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending) return;
    this.started = true;
    const text = this.pending;
    this.pending = "";
    this.pieces = 0;
    this.emitted += 1;
    this.emit(text);
  }

  /** Checkpoints sent so far. */
  get frames(): number {
    return this.emitted;
  }
}
