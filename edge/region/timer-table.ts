import { log } from "../http/log.js";

/** A failed timer is retried this long after the failure (the runtime's first backoff too). */
export const RETRY_DELAY_MS = 2_000;

/**
 * Logical timers multiplexed on a Durable Object's one physical alarm. Timers live in SQLite (so
 * they survive eviction); the physical alarm is always set to the earliest one. A timer is a typed
 * value; `codec` turns it into the row's name and back, and a timer's name is its identity, so
 * re-arming a timer replaces its previous deadline.
 *
 * A due timer is deleted only after its handler succeeded. If any handler throws, the others still
 * run, the physical alarm is re-armed for what is left (the failed timers are still due) and the
 * first error is rethrown, so the runtime retries `alarm()` and no timer is lost (the pattern of
 * tldraw's sync-worker AlarmScheduler).
 */
export interface TimerStorage {
  sql: SqlStorage;
  getAlarm(): Promise<number | null>;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

export interface TimerCodec<T> {
  encode(timer: T): string;
  /** Null for a name this code no longer knows (it is dropped with a warning). */
  decode(name: string): T | null;
}

export class TimerTable<T> {
  /**
   * Where the physical alarm is set (null: none), as this object last set it; undefined when not
   * known (a new instance, or after a wake-up, when the runtime has consumed the alarm that fired).
   * The object is single-threaded and only this table moves its alarm, so a known value saves a
   * `getAlarm` round trip per timer change, and `setAlarm` runs only when the earliest time moves.
   */
  private alarmAt: number | null | undefined = undefined;

  constructor(
    private readonly storage: TimerStorage,
    private readonly codec: TimerCodec<T>,
  ) {
    storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS timers (name TEXT PRIMARY KEY, at INTEGER NOT NULL)`,
    );
    // Every finished job keeps an expiry timer for its time to live, so the table holds about as
    // many rows as the jobs kept. Each timer change asks for the earliest time and each wake-up
    // for the due ones: by this index, a probe rather than a scan (and sort) of every row.
    storage.sql.exec(`CREATE INDEX IF NOT EXISTS timers_by_at ON timers(at, name)`);
  }

  /** Arm (or re-arm) a timer. */
  async set(timer: T, at: number): Promise<void> {
    this.storage.sql.exec(
      `INSERT OR REPLACE INTO timers (name, at) VALUES (?, ?)`,
      this.codec.encode(timer),
      at,
    );
    await this.sync();
  }

  async clear(timer: T): Promise<void> {
    const cursor = this.storage.sql.exec(
      `DELETE FROM timers WHERE name = ?`,
      this.codec.encode(timer),
    );
    // Clearing a timer that was not armed moves nothing.
    if (cursor.rowsWritten > 0) await this.sync();
  }

  has(timer: T): boolean {
    const name = this.codec.encode(timer);
    return this.storage.sql.exec(`SELECT 1 FROM timers WHERE name = ?`, name).toArray().length > 0;
  }

  /**
   * Call from the object's `alarm()`: runs the handler of every due timer (earliest first) and
   * deletes each one whose handler succeeded. Handlers may arm timers, including their own (that
   * new deadline is kept: only the row with the deadline that fired is deleted).
   */
  async runDue(handle: (timer: T) => Promise<void>, now = Date.now()): Promise<void> {
    // The alarm that woke the object is spent: what the runtime holds now is read again.
    this.alarmAt = undefined;
    const due = this.storage.sql
      .exec<{
        name: string;
        at: number;
      }>(`SELECT name, at FROM timers WHERE at <= ? ORDER BY at, name`, now)
      .toArray();
    const errors: unknown[] = [];
    for (const { name, at } of due) {
      const timer = this.codec.decode(name);
      try {
        if (timer === null) log("warn", "unknown timer dropped", { name });
        else await handle(timer);
        this.storage.sql.exec(`DELETE FROM timers WHERE name = ? AND at = ?`, name, at);
      } catch (e) {
        errors.push(e);
        log("error", "timer handler failed; it stays armed and is retried", {
          name,
          error: String(e),
        });
      }
    }
    // A failed timer is still due: retry it after a pause rather than at once, so a handler that
    // keeps failing does not spin the object.
    await this.sync(errors.length > 0 ? now + RETRY_DELAY_MS : 1);
    if (errors.length > 0) throw errors[0];
  }

  /** Point the physical alarm at the earliest timer, but not before `notBefore`. */
  private async sync(notBefore = 1): Promise<void> {
    if (this.alarmAt === undefined) {
      const read = await this.storage.getAlarm();
      // Another sync may have set the alarm while this one waited: its value is the newer.
      if (this.alarmAt === undefined) this.alarmAt = read;
    }
    // From here to the storage call nothing awaits, so the decision and the call that carries it
    // out are one step (storage calls run in the order they are made).
    const next = this.storage.sql
      .exec<{ at: number | null }>(`SELECT min(at) AS at FROM timers`)
      .one().at;
    // An overdue timer fires as soon as possible (the runtime refuses times <= 0).
    const target = next === null ? null : Math.max(next, notBefore);
    if (target === this.alarmAt) return;
    this.alarmAt = target;
    try {
      if (target === null) await this.storage.deleteAlarm();
      else await this.storage.setAlarm(target);
    } catch (e) {
      // Not known whether the call took effect: read it again next time.
      this.alarmAt = undefined;
      throw e;
    }
  }
}
