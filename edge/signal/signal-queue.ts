import type { Migration } from "../durable/migrations.js";
import type { RelayedSignal } from "../../shared/protocol/peerjs-messages.js";

/**
 * Signals for peers that have not connected yet (the caller's OFFER can reach the server before the
 * tab's socket, or the other way round). Kept in SQLite so an evicted object loses nothing; each
 * entry expires after `expireMs`, and its sender is then told EXPIRE, as peerjs-server does.
 */
export const MAX_QUEUED_PER_PEER = 64;

export interface QueuedSignal {
  at: number;
  signal: RelayedSignal;
}

/** The Signal object's schema (edge/durable/migrations.ts); step 1 is the schema as first shipped. */
export const SIGNAL_MIGRATIONS: readonly Migration[] = [
  (sql) => {
    sql.exec(`CREATE TABLE IF NOT EXISTS signal_queue (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      dst TEXT NOT NULL,
      src TEXT NOT NULL,
      at INTEGER NOT NULL,
      frame TEXT NOT NULL
    )`);
    sql.exec("CREATE INDEX IF NOT EXISTS signal_queue_dst ON signal_queue (dst, seq)");
    sql.exec("CREATE INDEX IF NOT EXISTS signal_queue_at ON signal_queue (at)");
  },
];

export class SignalQueue {
  constructor(private readonly sql: SqlStorage) {}

  /** Queue a signal; false when the destination's queue is full (the signal is dropped). */
  push(signal: RelayedSignal, now: number): boolean {
    const count = this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM signal_queue WHERE dst = ?", signal.dst)
      .one().n;
    if (count >= MAX_QUEUED_PER_PEER) return false;
    this.sql.exec(
      "INSERT INTO signal_queue (dst, src, at, frame) VALUES (?, ?, ?, ?)",
      signal.dst,
      signal.src,
      now,
      JSON.stringify(signal),
    );
    return true;
  }

  /** Take (and delete) every signal waiting for `dst`, oldest first. */
  take(dst: string): RelayedSignal[] {
    const rows = this.sql
      .exec<{ frame: string }>("SELECT frame FROM signal_queue WHERE dst = ? ORDER BY seq", dst)
      .toArray();
    if (rows.length) this.sql.exec("DELETE FROM signal_queue WHERE dst = ?", dst);
    return rows.map((r) => JSON.parse(r.frame) as RelayedSignal);
  }

  /** Remove entries queued at or before `cutoff`; returns each (src, dst) pair once. */
  expire(cutoff: number): Array<{ src: string; dst: string }> {
    const pairs = this.sql
      .exec<{ src: string; dst: string }>(
        "SELECT DISTINCT src, dst FROM signal_queue WHERE at <= ?",
        cutoff,
      )
      .toArray();
    if (pairs.length) this.sql.exec("DELETE FROM signal_queue WHERE at <= ?", cutoff);
    return pairs;
  }

  oldest(): number | null {
    return (
      this.sql.exec<{ at: number | null }>("SELECT MIN(at) AS at FROM signal_queue").one().at ??
      null
    );
  }

  size(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM signal_queue").one().n;
  }
}
