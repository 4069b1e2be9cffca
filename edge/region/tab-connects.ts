import { ApiError } from "../http/api-error.js";

/**
 * How often one address may open a tab socket in this Region object: a token bucket per address,
 * `perMinute` connects a minute and as many at once. A tab reconnects a few times an hour (network
 * change, reload, a shard split's Moved close); an address that opens and closes sockets in a loop
 * makes the Region accept, challenge and time out each one. Every socket of one address comes to
 * the same Region object (shard-map.ts), so the count here is exact, as MAX_NODES_PER_IP's is.
 *
 * Kept in SQLite, not memory, so hibernation or eviction does not hand a looping address a fresh
 * bucket. One row per address that connected within the last minute: a row older than that is a
 * full bucket, which says nothing, and is deleted (at most every PRUNE_MS).
 */
export class TabConnects {
  private prunedAt = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly perMinute: number,
  ) {
    sql.exec(
      `CREATE TABLE IF NOT EXISTS tab_connects (ip TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL)`,
    );
    // Addresses whose tab was closed for flooding (4009): no connects until `until`.
    sql.exec(
      `CREATE TABLE IF NOT EXISTS tab_penalties (ip TEXT PRIMARY KEY, until INTEGER NOT NULL)`,
    );
  }

  /** Refuse `ip`'s connects for FLOOD_PENALTY_MS: one of its tabs was closed for flooding frames. */
  penalize(ip: string, now = Date.now()): void {
    this.sql.exec(
      `INSERT INTO tab_penalties (ip, until) VALUES (?, ?)
       ON CONFLICT(ip) DO UPDATE SET until = excluded.until`,
      ip,
      now + FLOOD_PENALTY_MS,
    );
  }

  /** Whole seconds `ip` must still wait because of a flooding penalty, or null. */
  penaltyS(ip: string, now = Date.now()): number | null {
    const row = this.sql
      .exec<{ until: number }>(`SELECT until FROM tab_penalties WHERE ip = ?`, ip)
      .toArray()[0];
    if (!row || row.until <= now) return null;
    return Math.ceil((row.until - now) / 1000);
  }

  /** Take one connect for `ip`: null when allowed, else whole seconds until the next one is. */
  take(ip: string, now = Date.now()): number | null {
    this.prune(now);
    const perMs = this.perMinute / MINUTE_MS;
    const row = this.sql
      .exec<{ tokens: number; at: number }>(`SELECT tokens, at FROM tab_connects WHERE ip = ?`, ip)
      .toArray()[0];
    const tokens = row
      ? Math.min(this.perMinute, row.tokens + Math.max(0, now - row.at) * perMs)
      : this.perMinute;
    if (tokens < 1) return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000));
    this.sql.exec(
      `INSERT INTO tab_connects (ip, tokens, at) VALUES (?, ?, ?)
       ON CONFLICT(ip) DO UPDATE SET tokens = excluded.tokens, at = excluded.at`,
      ip,
      tokens - 1,
      now,
    );
    return null;
  }

  private prune(now: number): void {
    if (now - this.prunedAt < PRUNE_MS) return;
    this.prunedAt = now;
    this.sql.exec(`DELETE FROM tab_connects WHERE at < ?`, now - MINUTE_MS);
    this.sql.exec(`DELETE FROM tab_penalties WHERE until <= ?`, now);
  }
}

/**
 * How long an address may not open tab sockets after one of its tabs was closed with 4009
 * RateLimited (frames over the socket's budget): a flooder that reconnects at once would otherwise
 * get a fresh budget, and cost a handshake, every time (bench:abuse). Counted by the tab link in the
 * Worker's memory (edge/tab-link/connect-penalty.ts) and here in SQLite.
 */
export const FLOOD_PENALTY_MS = 60_000;

/** The 429 a penalized address gets before the upgrade, from the tab link or the Region. */
export function floodPenaltyError(waitS: number): ApiError {
  return new ApiError(
    429,
    "rate_limit_error",
    `A tab from this address was closed for sending frames faster than its budget; tab connections from it are refused for ${FLOOD_PENALTY_MS / 1000} s (retry after ${waitS} s).`,
    null,
    "tab_flood_penalty",
    { "retry-after": String(waitS) },
  );
}

const MINUTE_MS = 60_000;
/** Deleting full buckets is a scan of the table: not on every connect. */
const PRUNE_MS = 10_000;
