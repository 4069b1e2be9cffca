/**
 * One answer arriving over two paths (the coordinator relay and the WebRTC data channel), each
 * piece tagged with its character offset. Keeps the contiguous prefix, parks pieces that arrive
 * ahead of a gap, and hands out only text that is new, so nothing is duplicated or lost whichever
 * path is faster. Counts which path delivered each character first.
 */
export type Path = "relay" | "direct";

export class TextMerger {
  private text = "";
  private emitted = 0;
  private readonly ahead = new Map<number, { text: string; path: Path }>();
  readonly firstBy: Record<Path, number> = { relay: 0, direct: 0 };
  /** True if two paths disagreed about the same characters (see docs/embed.md, failover). */
  diverged = false;

  get length(): number {
    return this.text.length;
  }

  offer(offset: number, piece: string, path: Path): void {
    if (!piece) return;
    if (offset > this.text.length) {
      const parked = this.ahead.get(offset);
      if (!parked || parked.text.length < piece.length)
        this.ahead.set(offset, { text: piece, path });
      return;
    }
    this.append(offset, piece, path);
    // Pieces that were waiting for this gap may now fit.
    for (let moved = true; moved;) {
      moved = false;
      for (const [at, p] of this.ahead) {
        if (at > this.text.length) continue;
        this.ahead.delete(at);
        this.append(at, p.text, p.path);
        moved = true;
      }
    }
  }

  /** Text not handed out yet. */
  take(): string {
    const out = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return out;
  }

  private append(offset: number, piece: string, path: Path): void {
    const overlap = this.text.length - offset;
    if (
      overlap > 0 &&
      this.text.slice(offset, offset + Math.min(overlap, piece.length)) !== piece.slice(0, overlap)
    ) {
      this.diverged = true;
    }
    const fresh = piece.slice(Math.max(0, overlap));
    if (!fresh) return;
    this.text += fresh;
    this.firstBy[path] += fresh.length;
  }
}
