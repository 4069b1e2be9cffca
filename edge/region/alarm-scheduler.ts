/**
 * Named logical timers multiplexed on a Durable Object's one physical alarm. Timers live in SQLite
 * (so they survive eviction); the physical alarm is always set to the earliest one. Names carry
 * their subject, e.g. `lease:<jobId>`, so re-arming a name replaces its previous deadline.
 */
export interface TimerStorage {
  sql: SqlStorage;
  getAlarm(): Promise<number | null>;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

export class AlarmScheduler {
  constructor(private readonly storage: TimerStorage) {
    storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS timers (name TEXT PRIMARY KEY, at INTEGER NOT NULL)`,
    );
  }

  /** Arm (or re-arm) a named timer. */
  async set(name: string, at: number): Promise<void> {
    this.storage.sql.exec(`INSERT OR REPLACE INTO timers (name, at) VALUES (?, ?)`, name, at);
    await this.sync();
  }

  async clear(name: string): Promise<void> {
    this.storage.sql.exec(`DELETE FROM timers WHERE name = ?`, name);
    await this.sync();
  }

  /** Clear every timer whose name starts with `prefix` (e.g. all timers of one job). */
  async clearPrefix(prefix: string): Promise<void> {
    this.storage.sql.exec(`DELETE FROM timers WHERE substr(name, 1, ?) = ?`, prefix.length, prefix);
    await this.sync();
  }

  has(name: string): boolean {
    return this.storage.sql.exec(`SELECT 1 FROM timers WHERE name = ?`, name).toArray().length > 0;
  }

  /**
   * Call from the object's `alarm()`: removes and returns the names that are due (earliest first),
   * then re-arms the physical alarm for what is left. Handlers may arm new timers.
   */
  async takeDue(now = Date.now()): Promise<string[]> {
    const due = this.storage.sql
      .exec<{ name: string }>(`SELECT name FROM timers WHERE at <= ? ORDER BY at, name`, now)
      .toArray()
      .map((r) => r.name);
    if (due.length) this.storage.sql.exec(`DELETE FROM timers WHERE at <= ?`, now);
    await this.sync();
    return due;
  }

  private async sync(): Promise<void> {
    const next = this.storage.sql
      .exec<{ at: number | null }>(`SELECT min(at) AS at FROM timers`)
      .one().at;
    const current = await this.storage.getAlarm();
    if (next === null) {
      if (current !== null) await this.storage.deleteAlarm();
    } else if (current !== Math.max(next, 1)) {
      // An overdue timer fires as soon as possible (the runtime refuses times <= 0).
      await this.storage.setAlarm(Math.max(next, 1));
    }
  }
}
