/**
 * A binary min-heap keyed by a lower bound, for best-first search. Ties pop in insertion order so a
 * search is reproducible run to run.
 */
export class BoundHeap<T> {
  private bounds: number[] = [];
  private seqs: number[] = [];
  private items: T[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  /** The smallest bound, or Infinity when empty. */
  peekBound(): number {
    return this.bounds[0] ?? Infinity;
  }

  push(bound: number, item: T): void {
    this.bounds.push(bound);
    this.seqs.push(this.seq++);
    this.items.push(item);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const top = this.items[0];
    this.move(n - 1, 0);
    this.bounds.pop();
    this.seqs.pop();
    this.items.pop();
    if (n > 1) this.down(0);
    return top;
  }

  private less(i: number, j: number): boolean {
    const bi = this.bounds[i]!;
    const bj = this.bounds[j]!;
    return bi < bj || (bi === bj && this.seqs[i]! < this.seqs[j]!);
  }

  private move(from: number, to: number): void {
    this.bounds[to] = this.bounds[from]!;
    this.seqs[to] = this.seqs[from]!;
    this.items[to] = this.items[from]!;
  }

  private swap(i: number, j: number): void {
    const b = this.bounds[i]!;
    this.bounds[i] = this.bounds[j]!;
    this.bounds[j] = b;
    const s = this.seqs[i]!;
    this.seqs[i] = this.seqs[j]!;
    this.seqs[j] = s;
    const t = this.items[i]!;
    this.items[i] = this.items[j]!;
    this.items[j] = t;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
