import { DurableObject } from "cloudflare:workers";
import { keyDirectoryStub } from "../directory/directory-client.js";
import type { Migration } from "../durable/migrations.js";
import { startUp, type Ready } from "../durable/start-up.js";
import type { AppEnv } from "../env.js";
import { timingSafeEqual } from "./secret.js";

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
  | { ok: true; slot: string }
  | { ok: false; reason: "invalid_key" | "revoked" }
  | { ok: false; reason: "rate_limited" | "too_many_concurrent"; retryAfterS: number };

/** A slot not released within this time is reclaimed (its release was lost with a crash). */
const SLOT_TTL_MS = 15 * 60_000;

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
 * One Durable Object per client: `key:<id>` holds an API key's hash, name and limits; `ip:<addr>`
 * is an anonymous-tier address. Either way it admits requests against a per-minute token bucket
 * and a cap on concurrent requests. Everything is in SQLite, so eviction forgets nothing.
 *
 * A `key:<id>` object exists only for keys the admin API created: authentication asks the key
 * directory (directory-do.ts) first, and this object keeps the directory's copy of its hash and
 * revocation up to date (and re-registers itself whenever the admin API reads it, which backfills
 * keys created before the directory existed).
 */
export class ClientDurableObject extends DurableObject<AppEnv> {
  private readonly ready: Ready;
  private readonly sql: SqlStorage;
  /**
   * The client row and the open slots as SQLite holds them, read once per instance. Only this
   * object writes its tables and it is single-threaded, so each write below updates the copy
   * too: admitting a request reads nothing and writes what it wrote before (the bucket, the slot).
   * Undefined until first read; `cached` null when there is no row.
   */
  private cached: ClientRow | null | undefined = undefined;
  /** Slot id → when it expires; undefined until first read. */
  private slots: Map<string, number> | undefined = undefined;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
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
   * their limits (set on first use, updated when configuration changes).
   */
  async admit(keyHash: string | null, anonymousLimits?: ClientLimits): Promise<Admission> {
    await this.ready();
    const now = Date.now();
    if (keyHash === null && anonymousLimits) this.ensureAnonymous(anonymousLimits, now);
    const row = this.row();
    if (!row) return { ok: false, reason: "invalid_key" };
    if (keyHash !== null && (!row.key_hash || !timingSafeEqual(row.key_hash, keyHash))) {
      return { ok: false, reason: "invalid_key" };
    }
    if (row.revoked) return { ok: false, reason: "revoked" };

    const slots = this.openSlots();
    // Slots whose release was lost (a crash) are reclaimed once they expire.
    if ([...slots.values()].some((expiresAt) => expiresAt < now)) {
      this.sql.exec(`DELETE FROM slots WHERE expires_at < ?`, now);
      for (const [id, expiresAt] of slots) if (expiresAt < now) slots.delete(id);
    }
    if (slots.size >= row.concurrent) {
      return { ok: false, reason: "too_many_concurrent", retryAfterS: 1 };
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
    const slot = crypto.randomUUID();
    this.sql.exec(`INSERT INTO slots VALUES (?, ?)`, slot, now + SLOT_TTL_MS);
    slots.set(slot, now + SLOT_TTL_MS);
    return { ok: true, slot };
  }

  /**
   * The request admitted with `slot` ended. `refund` gives its token back: the request was refused
   * before any job was created (400/404/413), so it must not count against the limit.
   */
  async release(slot: string, refund = false): Promise<void> {
    await this.ready();
    const slots = this.openSlots();
    // A slot already released (or reclaimed) is not in the table: nothing to write.
    if (!slots.has(slot)) return;
    this.sql.exec(`DELETE FROM slots WHERE id = ?`, slot);
    slots.delete(slot);
    const row = this.row();
    if (refund && row) {
      this.sql.exec(`UPDATE client SET tokens = min(rpm, tokens + 1)`);
      row.tokens = Math.min(row.rpm, row.tokens + 1);
    }
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
    if (!row) {
      this.insertRow(null, "anonymous", limits, now);
    } else if (row.rpm !== limits.rpm || row.concurrent !== limits.concurrent) {
      this.sql.exec(`UPDATE client SET rpm = ?, concurrent = ?`, limits.rpm, limits.concurrent);
      row.rpm = limits.rpm;
      row.concurrent = limits.concurrent;
    }
  }

  /** The client's row (read once; kept current by the writes above), or undefined. */
  private row(): ClientRow | undefined {
    if (this.cached === undefined) {
      this.cached = this.sql.exec<ClientRow>(`SELECT * FROM client`).toArray()[0] ?? null;
    }
    return this.cached ?? undefined;
  }

  /** The open slots (read once; kept current by admit and release). */
  private openSlots(): Map<string, number> {
    if (!this.slots) {
      this.slots = new Map();
      for (const r of this.sql.exec<{ id: string; expires_at: number }>(
        `SELECT id, expires_at FROM slots`,
      )) {
        this.slots.set(r.id, r.expires_at);
      }
    }
    return this.slots;
  }
}
