import { DurableObject } from "cloudflare:workers";
import { keyDirectoryStub } from "../directory/directory-client.js";
import type { Migration } from "../durable/migrations.js";
import { startUp, type Ready } from "../durable/start-up.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import { shardOfJobId, shardStub } from "../region/region-stub.js";
import { REQUEST_HOLDER, type HolderChange } from "./client-slots.js";
import { timingSafeEqual } from "./secret.js";
import { SlotTable, type DueSlot } from "./slot-table.js";

/** Limits of one client (an API key, or one address on the anonymous tier). */
export interface ClientLimits {
  /** Requests per minute (token bucket refilled continuously). */
  rpm: number;
  /** Requests running at once. */
  concurrent: number;
}

export interface KeyInfo {
  id: string;
  name: string;
  created: number;
  revoked: boolean;
  limits: ClientLimits;
}

export type Admission =
  /** `slot` is null when admitted without one (`admit`'s `slot: false`). */
  | { ok: true; slot: string | null }
  | { ok: false; reason: "invalid_key" | "revoked" }
  | { ok: false; reason: "rate_limited" | "too_many_concurrent"; retryAfterS: number };

/**
 * An anonymous address idle this long with no slot (its bucket long full again) is forgotten: its
 * object deletes its storage (`alarm`), so an address seen once leaves nothing behind.
 */
export const ANONYMOUS_IDLE_MS = 60 * 60_000;

/** Step 1 is the schema as first shipped (IF NOT EXISTS, so existing objects migrate cleanly). */
export const CLIENT_MIGRATIONS: readonly Migration[] = [
  (sql) => {
    sql.exec(`CREATE TABLE IF NOT EXISTS client (
      one INTEGER PRIMARY KEY CHECK (one = 1),
      key_hash TEXT, name TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER NOT NULL,
      rpm INTEGER NOT NULL, concurrent INTEGER NOT NULL,
      tokens REAL NOT NULL, refilled_at INTEGER NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS slots (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)`);
  },
  // Who holds each slot (client-slots.ts, slot-table.ts); a slot open before is its request's.
  // `expires_at` is now when the slot is looked at next. Columns already there are kept (a
  // database whose `_migrations` count was lost runs every step again: migrations.ts).
  (sql) => {
    const columns = new Set(
      sql
        .exec<{ name: string }>(`PRAGMA table_info(slots)`)
        .toArray()
        .map((c) => c.name),
    );
    if (!columns.has("holders"))
      sql.exec(`ALTER TABLE slots ADD COLUMN holders TEXT NOT NULL DEFAULT '["request"]'`);
    if (!columns.has("ended"))
      sql.exec(`ALTER TABLE slots ADD COLUMN ended TEXT NOT NULL DEFAULT '[]'`);
  },
];

/** The client's one row (table `client`). */
interface ClientRow extends Record<string, SqlStorageValue> {
  key_hash: string | null;
  name: string;
  created: number;
  revoked: number;
  rpm: number;
  concurrent: number;
  tokens: number;
  refilled_at: number;
}

/**
 * One Durable Object per client: `key:<id>` holds an API key's hash, name and limits; `ip:<key>`
 * is an anonymous-tier address (its limit key: http/address-key.ts). Either way it admits requests
 * against a per-minute token bucket and a cap on concurrent requests, whose slots are held until
 * the request's jobs end (client-slots.ts). Everything is in SQLite, so eviction forgets nothing;
 * an anonymous address's object deletes itself once idle (`alarm`).
 *
 * A `key:<id>` object exists only for keys the admin API created: authentication asks the key
 * directory (directory-do.ts) first, and this object keeps the directory's copy of its hash and
 * revocation up to date (and re-registers itself whenever the admin API reads it, which backfills
 * keys created before the directory existed).
 */
export class ClientDurableObject extends DurableObject<AppEnv> {
  /** Replaced when an idle anonymous object deleted its storage (the next call starts afresh). */
  private ready: Ready;
  private readonly sql: SqlStorage;
  /**
   * The client row and the open slots as SQLite holds them, read once per instance. Only this
   * object writes its tables and it is single-threaded, so each write below updates the copy
   * too: admitting a request reads nothing and writes what it wrote before (the bucket, the slot).
   * Undefined until first read; `cached` null when there is no row.
   */
  private cached: ClientRow | null | undefined = undefined;
  private slots: SlotTable;
  /** Whether this instance made sure the idle check (`alarm`) is set. */
  private alarmSet = false;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.slots = new SlotTable(this.sql);
    this.ready = startUp(ctx, { migrations: CLIENT_MIGRATIONS });
  }

  /** Store a new key (admin API). Fails if this id already holds a key. */
  async createKey(
    id: string,
    keyHash: string,
    name: string,
    limits: ClientLimits,
  ): Promise<KeyInfo | null> {
    await this.ready();
    if (this.row()) return null;
    const now = Date.now();
    this.insertRow(keyHash, name, limits, now);
    await keyDirectoryStub(this.env, id).registerKey(id, keyHash, false);
    return { id, name, created: now, revoked: false, limits };
  }

  async revoke(id: string): Promise<KeyInfo | null> {
    await this.ready();
    const row = this.row();
    if (!row?.key_hash) return null;
    this.sql.exec(`UPDATE client SET revoked = 1`);
    row.revoked = 1;
    return this.info(id);
  }

  async info(id: string): Promise<KeyInfo | null> {
    await this.ready();
    const row = this.row();
    if (!row?.key_hash) return null;
    await keyDirectoryStub(this.env, id).registerKey(id, row.key_hash, row.revoked === 1);
    return {
      id,
      name: row.name,
      created: row.created,
      revoked: row.revoked === 1,
      limits: { rpm: row.rpm, concurrent: row.concurrent },
    };
  }

  /**
   * Admit one request. `keyHash` is checked for key clients; anonymous clients pass null and
   * their limits (set on first use, updated when configuration changes). With `slot: false` only
   * the rate is counted (reading, resuming or cancelling a job: the job holds its own slot).
   */
  async admit(
    keyHash: string | null,
    anonymousLimits?: ClientLimits,
    { slot: holdsSlot = true }: { slot?: boolean } = {},
  ): Promise<Admission> {
    await this.ready();
    let now = Date.now();
    if (keyHash === null && anonymousLimits) this.ensureAnonymous(anonymousLimits, now);
    const row = this.row();
    if (!row) return { ok: false, reason: "invalid_key" };
    if (keyHash !== null && (!row.key_hash || !timingSafeEqual(row.key_hash, keyHash))) {
      return { ok: false, reason: "invalid_key" };
    }
    if (row.revoked) return { ok: false, reason: "revoked" };

    if (holdsSlot && this.slots.size >= row.concurrent) {
      // At the limit: slots whose release may have been lost are looked at (slot-table.ts).
      await this.reclaim(this.slots.due(now));
      now = Date.now();
      if (this.slots.size >= row.concurrent) {
        return { ok: false, reason: "too_many_concurrent", retryAfterS: 1 };
      }
    }
    const perMs = row.rpm / 60_000;
    const tokens = Math.min(row.rpm, row.tokens + (now - row.refilled_at) * perMs);
    if (tokens < 1) {
      return {
        ok: false,
        reason: "rate_limited",
        retryAfterS: Math.ceil((1 - tokens) / perMs / 1000),
      };
    }
    this.sql.exec(`UPDATE client SET tokens = ?, refilled_at = ?`, tokens - 1, now);
    row.tokens = tokens - 1;
    row.refilled_at = now;
    if (!holdsSlot) return { ok: true, slot: null };
    const slot = crypto.randomUUID();
    this.slots.add(slot, now);
    return { ok: true, slot };
  }

  /**
   * Change who holds `slot` (client-slots.ts): the request hands it to the jobs it opened, a job's
   * Region object lets go when the job ends, the request lets go when its response ends. The slot
   * is free once nobody holds it. `refund` gives the request's token back: it was refused before
   * any job was created (400/404/413), so it must not count against the limit (`slot` null: a
   * request admitted without a slot).
   */
  async hold(slot: string | null, change: HolderChange): Promise<void> {
    await this.ready();
    if (slot !== null) this.slots.change(slot, change, Date.now());
    const row = this.row();
    if (change.refund && row) {
      this.sql.exec(`UPDATE client SET tokens = min(rpm, tokens + 1)`);
      row.tokens = Math.min(row.rpm, row.tokens + 1);
    }
  }

  /** The request admitted with `slot` ended, holding the slot itself (`hold` dropping it). */
  async release(slot: string | null, refund = false): Promise<void> {
    await this.hold(slot, { drop: [REQUEST_HOLDER], refund });
  }

  /**
   * An anonymous address's object forgets it once idle (ANONYMOUS_IDLE_MS since its last admitted
   * request, no slot open): everything is deleted, so the address's next request starts afresh
   * (with a full bucket, as it would have by then anyway). Key objects never expire.
   */
  override async alarm(): Promise<void> {
    await this.ready();
    const row = this.row();
    if (!row || row.key_hash !== null) return;
    const idleSince = row.refilled_at;
    const now = Date.now();
    if (this.slots.size > 0 || now < idleSince + ANONYMOUS_IDLE_MS) {
      await this.ctx.storage.setAlarm(Math.max(now, idleSince) + ANONYMOUS_IDLE_MS);
      return;
    }
    await this.ctx.storage.deleteAll();
    this.cached = undefined;
    this.slots = new SlotTable(this.sql);
    this.alarmSet = false;
    // Nothing is written again until the address comes back: then the schema is made afresh.
    this.ready = () => {
      this.ready = startUp(this.ctx, { migrations: CLIENT_MIGRATIONS });
      return this.ready();
    };
  }

  /**
   * Look at slots due (slot-table.ts): one still held by its request is reclaimed (its release
   * was lost); one held by jobs is reclaimed only when none of its jobs still runs, else looked at
   * again later. A Region object that cannot be asked counts as "not running" (as a timeout
   * would): a caller is never kept at its limit by an object that does not answer.
   */
  private async reclaim(due: DueSlot[]): Promise<void> {
    if (due.length === 0) return;
    const running = await Promise.all(due.map((slot) => this.anyRunning(slot.jobs)));
    const now = Date.now();
    due.forEach((slot, i) => {
      if (running[i]) this.slots.recheckLater(slot.id, now);
      else {
        this.slots.free(slot.id);
        log("warn", "concurrency slot reclaimed", { jobs: slot.jobs.length });
      }
    });
  }

  private async anyRunning(jobIds: readonly string[]): Promise<boolean> {
    const answers = await Promise.all(
      jobIds.map(async (jobId) => {
        const shard = shardOfJobId(jobId);
        if (!shard) return false;
        try {
          return await shardStub(this.env, shard).jobRunning(jobId);
        } catch (err) {
          log("warn", "could not ask whether a job still runs", { jobId, error: String(err) });
          return false;
        }
      }),
    );
    return answers.some(Boolean);
  }

  /** Write this client's one row, full bucket, and keep it as the cached row. */
  private insertRow(keyHash: string | null, name: string, limits: ClientLimits, now: number): void {
    this.cached = {
      key_hash: keyHash,
      name,
      created: now,
      revoked: 0,
      rpm: limits.rpm,
      concurrent: limits.concurrent,
      tokens: limits.rpm,
      refilled_at: now,
    };
    const r = this.cached;
    this.sql.exec(
      `INSERT INTO client VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.key_hash,
      r.name,
      r.created,
      r.revoked,
      r.rpm,
      r.concurrent,
      r.tokens,
      r.refilled_at,
    );
  }

  private ensureAnonymous(limits: ClientLimits, now: number): void {
    const row = this.row();
    if (!row) this.insertRow(null, "anonymous", limits, now);
    // Once per instance: an anonymous object always has its idle check (`alarm`) set; objects
    // created before it existed get one here.
    if (!this.alarmSet) {
      this.alarmSet = true;
      this.armIdleCheck(now).catch((err: unknown) => {
        log("warn", "could not set an anonymous client's idle check", { error: String(err) });
      });
    }
    if (row && (row.rpm !== limits.rpm || row.concurrent !== limits.concurrent)) {
      this.sql.exec(`UPDATE client SET rpm = ?, concurrent = ?`, limits.rpm, limits.concurrent);
      row.rpm = limits.rpm;
      row.concurrent = limits.concurrent;
    }
  }

  private async armIdleCheck(now: number): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(now + ANONYMOUS_IDLE_MS);
    }
  }

  /** The client's row (read once; kept current by the writes above), or undefined. */
  private row(): ClientRow | undefined {
    if (this.cached === undefined) {
      this.cached = this.sql.exec<ClientRow>(`SELECT * FROM client`).toArray()[0] ?? null;
    }
    return this.cached ?? undefined;
  }
}
