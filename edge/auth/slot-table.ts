import { REQUEST_HOLDER, type HolderChange } from "./client-slots.js";

/**
 * A slot the admitting request still holds (client-slots.ts) past this is reclaimed: the request
 * hands it to its jobs as soon as they are open, so only a request that opened none (a refusal, a
 * cloud-fallback answer) holds it itself for long, and only a crash loses its release.
 */
export const REQUEST_HOLD_MS = 15 * 60_000;

/**
 * A slot only jobs hold is never reclaimed by age alone. A job's real bound is per attempt: up to
 * PREFILL_MAX_MS + LEASE_MS to its first token, then up to (max_tokens + 1) × LEASE_MS
 * (region/job-leases.ts `pastDeadline`: 2.1 h for the default 256 tokens, days for a large
 * max_tokens), times MAX_ATTEMPTS, plus waits for a tab: no one timeout fits both a 2-second job
 * and that, and a fixed one reclaimed the slots of long streams while they ran. So past this, a
 * caller at its limit has the slot's jobs looked up in their Region objects (client-do.ts), at most
 * once per period per slot, and the slot is reclaimed only if none still runs: a lost release costs
 * the caller at most this long at its limit.
 */
export const JOB_CHECK_MS = 60_000;

/** An open slot as kept in memory (a row of table `slots`). */
interface Slot {
  /** When it is looked at next, if the caller is at its limit then (column `expires_at`). */
  checkAt: number;
  /** The admitting request and/or the ids of the jobs it handed the slot to. */
  holders: Set<string>;
  /** Jobs that ended before the request's hand-over named them (their Region was first). */
  ended: Set<string>;
}

/** A slot due for a look: reclaimed at once if its request holds it, else if no job runs. */
export interface DueSlot {
  id: string;
  /** The jobs holding it; empty when the request itself does (reclaimed without asking). */
  jobs: string[];
}

interface SlotRow extends Record<string, SqlStorageValue> {
  id: string;
  expires_at: number;
  holders: string;
  ended: string;
}

/**
 * The open concurrency slots of one Client object, in its SQLite table `slots`, read once per
 * instance and kept current by every write (the object is single-threaded and the only writer).
 */
export class SlotTable {
  private slots: Map<string, Slot> | undefined = undefined;

  constructor(private readonly sql: SqlStorage) {}

  get size(): number {
    return this.open().size;
  }

  /** A new slot held by the request being admitted. */
  add(id: string, now: number): void {
    const slot: Slot = {
      checkAt: now + REQUEST_HOLD_MS,
      holders: new Set([REQUEST_HOLDER]),
      ended: new Set(),
    };
    this.sql.exec(`INSERT INTO slots (id, expires_at) VALUES (?, ?)`, id, slot.checkAt);
    this.open().set(id, slot);
  }

  /**
   * Apply a change of holders; the slot is freed when none is left. A job dropped before it was
   * added (its Region let go before the request's hand-over arrived) is remembered while the
   * request still holds the slot, so the hand-over does not add it back. Unknown slots (freed,
   * reclaimed) are left alone. Returns whether the slot was freed.
   */
  change(id: string, { add = [], drop = [] }: HolderChange, now: number): boolean {
    const slot = this.open().get(id);
    if (!slot) return false;
    const requestHeld = slot.holders.has(REQUEST_HOLDER);
    for (const holder of add) if (!slot.ended.delete(holder)) slot.holders.add(holder);
    for (const holder of drop) {
      if (!slot.holders.delete(holder) && slot.holders.has(REQUEST_HOLDER)) slot.ended.add(holder);
    }
    if (slot.holders.size === 0) {
      this.free(id);
      return true;
    }
    // Handed to its jobs: from now on it is looked at only to ask whether they still run.
    if (requestHeld && !slot.holders.has(REQUEST_HOLDER)) slot.checkAt = now + JOB_CHECK_MS;
    this.write(id, slot);
    return false;
  }

  /** Slots due for a look at `now`. */
  due(now: number): DueSlot[] {
    const due: DueSlot[] = [];
    for (const [id, slot] of this.open()) {
      if (slot.checkAt > now) continue;
      due.push({ id, jobs: slot.holders.has(REQUEST_HOLDER) ? [] : [...slot.holders] });
    }
    return due;
  }

  /** A due slot whose jobs still run: looked at again a period later. */
  recheckLater(id: string, now: number): void {
    const slot = this.open().get(id);
    if (!slot) return;
    slot.checkAt = now + JOB_CHECK_MS;
    this.write(id, slot);
  }

  free(id: string): void {
    if (!this.open().delete(id)) return;
    this.sql.exec(`DELETE FROM slots WHERE id = ?`, id);
  }

  private write(id: string, slot: Slot): void {
    this.sql.exec(
      `UPDATE slots SET expires_at = ?, holders = ?, ended = ? WHERE id = ?`,
      slot.checkAt,
      JSON.stringify([...slot.holders]),
      JSON.stringify([...slot.ended]),
      id,
    );
  }

  /** The open slots (read once; kept current by every write here). */
  private open(): Map<string, Slot> {
    if (!this.slots) {
      this.slots = new Map();
      for (const r of this.sql.exec<SlotRow>(`SELECT id, expires_at, holders, ended FROM slots`)) {
        this.slots.set(r.id, {
          checkAt: r.expires_at,
          holders: new Set(JSON.parse(r.holders) as string[]),
          ended: new Set(JSON.parse(r.ended) as string[]),
        });
      }
    }
    return this.slots;
  }
}
