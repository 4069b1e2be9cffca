import type { Migration } from "../durable/migrations.js";
import type { RelayedSignal } from "../../shared/protocol/peerjs-messages.js";

/**
 * Signals for peers that have not connected yet (the caller's OFFER can reach the server before the
 * tab's socket, or the other way round). Kept in SQLite so an evicted object loses nothing; each
 * entry expires after `expireMs`, and its sender is then told EXPIRE, as peerjs-server does.
 *
 * One sender cannot fill a peer's queue: each sender id, and all senders from one address, hold at
 * most a share of it; each sender id and each address also have a cap over all destinations, so
 * spraying made-up destinations (refused anyway: only issued ids are queued for) stores little.
 */
export const MAX_QUEUED_PER_PEER = 64;
/** Of one peer's queue: what one sender id may hold (an offer plus its ICE candidates fit). */
export const QUEUE_SHARE_PER_SENDER = 24;
/** Of one peer's queue: what every sender from one address together may hold. */
export const QUEUE_SHARE_PER_ADDRESS = 32;
/** Over every destination in this object: what one sender id, and one address, may hold. */
export const MAX_QUEUED_PER_SENDER = 64;
export const MAX_QUEUED_PER_ADDRESS = 256;

/** Why a signal was not queued. */
export type QueueRefusal = "peer_full" | "sender_share" | "address_share";

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
  // Step 2: the sender's address, for per-address shares.
  (sql) => {
    sql.exec("ALTER TABLE signal_queue ADD COLUMN addr TEXT NOT NULL DEFAULT ''");
    sql.exec("CREATE INDEX IF NOT EXISTS signal_queue_src ON signal_queue (src)");
    sql.exec("CREATE INDEX IF NOT EXISTS signal_queue_addr ON signal_queue (addr)");
  },
];

export class SignalQueue {
  constructor(private readonly sql: SqlStorage) {}

  /** Queue a signal from `addr`; null when queued, else why it was dropped. */
  push(signal: RelayedSignal, addr: string, now: number): QueueRefusal | null {
    const n = this.sql
      .exec<{ peer: number; src: number; addr: number; srcAll: number; addrAll: number }>(
        `SELECT
           COALESCE(SUM(dst = ?), 0) AS peer,
           COALESCE(SUM(dst = ? AND src = ?), 0) AS src,
           COALESCE(SUM(dst = ? AND addr = ?), 0) AS addr,
           COALESCE(SUM(src = ?), 0) AS srcAll,
           COALESCE(SUM(addr = ?), 0) AS addrAll
         FROM signal_queue WHERE dst = ? OR src = ? OR addr = ?`,
        ...[signal.dst, signal.dst, signal.src, signal.dst, addr, signal.src, addr],
        ...[signal.dst, signal.src, addr],
      )
      .one();
    if (n.src >= QUEUE_SHARE_PER_SENDER || n.srcAll >= MAX_QUEUED_PER_SENDER) {
      return "sender_share";
    }
    if (n.addr >= QUEUE_SHARE_PER_ADDRESS || n.addrAll >= MAX_QUEUED_PER_ADDRESS) {
      return "address_share";
    }
    if (n.peer >= MAX_QUEUED_PER_PEER) return "peer_full";
    this.sql.exec(
      "INSERT INTO signal_queue (dst, src, at, frame, addr) VALUES (?, ?, ?, ?, ?)",
      signal.dst,
      signal.src,
      now,
      JSON.stringify(signal),
      addr,
    );
    return null;
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
