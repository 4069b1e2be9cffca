import type { Timers } from "../../web/runtime/timers.js";

/** A hand-driven clock for unit tests: time moves only when `advance` is called. */
export class ManualTimers implements Timers {
  private t = 0;
  private nextId = 1;
  private readonly due = new Map<number, { at: number; fn: () => void; every?: number }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.due.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(id: number): void {
    this.due.delete(id);
  }
  setInterval(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.due.set(id, { at: this.t + ms, fn, every: ms });
    return id;
  }
  clearInterval(id: number): void {
    this.due.delete(id);
  }
  /** Move time forward, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let nextId: number | null = null;
      let nextAt = Infinity;
      for (const [id, d] of this.due)
        if (d.at <= end && d.at < nextAt) [nextId, nextAt] = [id, d.at];
      if (nextId === null) break;
      const d = this.due.get(nextId)!;
      this.t = d.at;
      if (d.every) d.at += d.every;
      else this.due.delete(nextId);
      d.fn();
    }
    this.t = end;
  }
  get pending(): number {
    return this.due.size;
  }
}
