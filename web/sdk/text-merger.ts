import { DIRECT_WINDOW } from "../direct/client-receiver-types.js";

/**
 * One answer arriving over two paths (the coordinator relay and the WebRTC data channel), each
 * piece tagged with its character offset. Keeps the contiguous prefix, parks pieces that arrive
 * ahead of a gap (a bounded number of them: see DIRECT_WINDOW), and hands out only text that is
 * new, so nothing is duplicated or lost whichever path is faster. Counts which path delivered each
 * character first. Starts at `start` when the caller already has that much of the answer.
 *
 * The relay is the record: it offers its pieces in order, each where its previous one ended, so
 * every character past the relay's end came by the direct path. Where the two disagree, the
 * relay's text replaces the direct text not handed out yet (what was handed out stays: a stream
 * cannot take it back).
 */
export type Path = "relay" | "direct";

interface Parked {
  at: number;
  text: string;
  path: Path;
}

export class TextMerger {
  /** The answer from `start` on. */
  private text = "";
  private emitted: number;
  /** Pieces ahead of a gap, by offset (ascending, one per offset). */
  private readonly ahead: Parked[] = [];
  private aheadChars = 0;
  readonly firstBy: Record<Path, number> = { relay: 0, direct: 0 };
  /** True if two paths disagreed about the same characters (see docs/embed.md, failover). */
  diverged = false;

  constructor(
    private readonly start = 0,
    private readonly limits: { chars: number; pieces: number } = DIRECT_WINDOW,
  ) {
    this.emitted = start;
  }

  /** Characters of the answer held (those before `start` included). */
  get length(): number {
    return this.start + this.text.length;
  }

  /** Place a piece; false if it is ahead of a gap and there is no room left to park it. */
  offer(offset: number, piece: string, path: Path): boolean {
    if (offset < this.start) {
      piece = piece.slice(this.start - offset);
      offset = this.start;
    }
    if (!piece) return true;
    if (offset > this.length) return this.park({ at: offset, text: piece, path });
    this.append(offset, piece, path);
    // Pieces that were waiting for this gap may now fit; they are sorted, so only the first ones.
    while (this.ahead[0] && this.ahead[0].at <= this.length) {
      const p = this.ahead.shift()!;
      this.aheadChars -= p.text.length;
      this.append(p.at, p.text, p.path);
    }
    return true;
  }

  /** Text not handed out yet. */
  take(): string {
    const out = this.text.slice(this.emitted - this.start);
    this.emitted = this.length;
    return out;
  }

  /**
   * Forget the text after `to`, except what was handed out already, which cannot be taken back;
   * `path` delivered it first. Returns how many characters were dropped.
   */
  rewind(to: number, path: Path): number {
    const keep = Math.max(to, this.emitted, this.start);
    const dropped = this.length - keep;
    if (dropped <= 0) return 0;
    this.text = this.text.slice(0, keep - this.start);
    this.firstBy[path] -= dropped;
    return dropped;
  }

  /** Forget the parked pieces from `path`. */
  dropParked(path: Path): void {
    for (let i = this.ahead.length - 1; i >= 0; i--) {
      const p = this.ahead[i]!;
      if (p.path !== path) continue;
      this.ahead.splice(i, 1);
      this.aheadChars -= p.text.length;
    }
  }

  private park(piece: Parked): boolean {
    // Pieces mostly arrive in order, so look from the end.
    let i = this.ahead.length;
    while (i > 0 && this.ahead[i - 1]!.at > piece.at) i--;
    const same = this.ahead[i - 1]?.at === piece.at ? this.ahead[i - 1]! : null;
    if (same && same.text.length >= piece.text.length) return true;
    const grows = piece.text.length - (same?.text.length ?? 0);
    const count = this.ahead.length + (same ? 0 : 1);
    if (count > this.limits.pieces || this.aheadChars + grows > this.limits.chars) return false;
    if (same) this.ahead[i - 1] = piece;
    else this.ahead.splice(i, 0, piece);
    this.aheadChars += grows;
    return true;
  }

  private append(offset: number, piece: string, path: Path): void {
    const overlap = this.length - offset;
    const from = offset - this.start;
    if (
      overlap > 0 &&
      this.text.slice(from, from + Math.min(overlap, piece.length)) !== piece.slice(0, overlap)
    ) {
      this.diverged = true;
      // Everything from the relay's offset on came by the direct path (see above).
      if (path === "relay") this.rewind(offset, "direct");
    }
    const fresh = piece.slice(Math.max(0, this.length - offset));
    if (!fresh) return;
    this.text += fresh;
    this.firstBy[path] += fresh.length;
  }
}
