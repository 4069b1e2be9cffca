import { DurableObject } from "cloudflare:workers";
import type { Migration } from "../durable/migrations.js";
import { startUp, type Ready } from "../durable/start-up.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import type {
  AccountView,
  Earning,
  KeyAccount,
  LedgerOp,
  LedgerOpResult,
  TakeBack,
  TakenBackAll,
  TopContributor,
} from "./ledger-types.js";
import { lastTakeBack, noneAlike, recordCharges, takeBack, takeBackAlike } from "./take-backs.js";

/** Step 1 is the schema as first shipped. */
export const LEDGER_MIGRATIONS: readonly Migration[] = [
  // One account per contributor identity (the tab id its public key proves).
  `CREATE TABLE IF NOT EXISTS accounts (
    identity TEXT PRIMARY KEY, public_id TEXT NOT NULL,
    earned REAL NOT NULL DEFAULT 0, spent REAL NOT NULL DEFAULT 0, withheld REAL NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0, jobs INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    key_id TEXT, link_signed_at INTEGER,
    name TEXT, name_signed_at INTEGER,
    updated_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS accounts_by_key ON accounts (key_id)`,
  `CREATE INDEX IF NOT EXISTS accounts_by_earned ON accounts (earned DESC)`,
  // Jobs already credited, so a retried report is not counted twice (pruned after a day).
  `CREATE TABLE IF NOT EXISTS earnings (
    job_id TEXT NOT NULL, identity TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (job_id, identity))`,
  // Credit a key set aside for a request that took a paid place in a queue, until it settles.
  `CREATE TABLE IF NOT EXISTS holds (
    request_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, amount REAL NOT NULL, created_at INTEGER NOT NULL)`,
  // Holds were keyed by the client's x-request-id, which the client chooses (and may repeat, or
  // share between the n choices of one request); now by an id the Worker mints per job
  // (queue-place.ts). A row of the old kind is never settled by that id and goes at HOLD_TTL_MS.
  `ALTER TABLE holds RENAME COLUMN request_id TO hold_id`,
  // What each job paid (take-backs.ts): its credit, the tokens it bought, the bucket it went to —
  // so credit paid for a count confirmed inflated later can be taken back at what it was paid.
  `ALTER TABLE earnings ADD COLUMN credit REAL`,
  `ALTER TABLE earnings ADD COLUMN tokens INTEGER`,
  `ALTER TABLE earnings ADD COLUMN withheld INTEGER NOT NULL DEFAULT 0`,
  // What a settlement took from each identity of the key, for the job's tokens (pruned as earnings).
  `CREATE TABLE IF NOT EXISTS charges (
    job_id TEXT NOT NULL, identity TEXT NOT NULL, amount REAL NOT NULL, tokens INTEGER NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (job_id, identity))`,
  // Credit taken back for a count confirmed inflated: once per (job, identity), and the statement.
  `CREATE TABLE IF NOT EXISTS take_backs (
    job_id TEXT NOT NULL, identity TEXT NOT NULL, tokens INTEGER NOT NULL, owed REAL NOT NULL,
    taken REAL NOT NULL, refunded REAL NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (job_id, identity))`,
  `CREATE INDEX IF NOT EXISTS take_backs_by_identity ON take_backs (identity, at)`,
  `ALTER TABLE accounts ADD COLUMN taken_back REAL NOT NULL DEFAULT 0`,
  // An identity's other answers, found when one of its counts is confirmed inflated (take-backs.ts).
  `CREATE INDEX IF NOT EXISTS earnings_by_identity ON earnings (identity, at)`,
];

/** What a signed statement did: taken, older than the last one taken, or no such account. */
export type ProofOutcome = "done" | "stale" | "unknown" | "too_soon";

/** A display name changes at most this often per identity (the name route needs no API key). */
export const NAME_CHANGE_MS = 60_000;

/**
 * Earnings (and charges) remembered for de-duplication and for a take-back: a job is settled long
 * before, and its audit confirmed within hours (each verifier has at most 91 min: policy.ts). A
 * confirmation later than this finds nothing to take back.
 */
const EARNINGS_KEEP_MS = 24 * 3_600_000;
/** Take-backs remembered, as the statement's lines (a repeat after the earning is gone finds none). */
const TAKE_BACKS_KEEP_MS = 30 * 24 * 3_600_000;
/** A hold its Region never settled (object lost, job expired unseen) is released after this. */
export const HOLD_TTL_MS = 2 * 3_600_000;
/** Most rows the public list returns. */
export const MAX_TOP = 50;

interface AccountRow extends Record<string, SqlStorageValue> {
  identity: string;
  public_id: string;
  earned: number;
  spent: number;
  withheld: number;
  taken_back: number;
  tokens: number;
  jobs: number;
  quarantined: number;
  key_id: string | null;
  link_signed_at: number | null;
  name: string | null;
  name_signed_at: number | null;
}

/**
 * The credit ledger: one SQLite database, in the single Durable Object named `global`, holding
 * every contributor identity's account, which API key each identity is linked to, and the credit
 * keys have set aside for queued requests. One object, not one per Region: a tab that reconnects
 * to another Region keeps its account, a key spends credit its tabs earned anywhere, and linking,
 * spending and the public list are each one transaction on one database (docs/credits.md says
 * why one object is enough and how it would be sharded).
 *
 * Every amount comes from a Region's own count (the bounded completion tokens of tab-learning.ts);
 * nothing a tab says reaches this object.
 */
export class LedgerDurableObject extends DurableObject<AppEnv> {
  private readonly ready: Ready;
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.ready = startUp(ctx, { migrations: LEDGER_MIGRATIONS });
  }

  /**
   * Credit an identity for a job. Idempotent per (job, identity). Withheld instead of added while
   * the identity is quarantined, here or (`quarantined`) in the Region that reports it.
   */
  async earn(e: Earning): Promise<AccountView> {
    await this.ready();
    const now = Date.now();
    this.ensure(e.identity, e.publicId, now);
    const withheld = e.quarantined || this.row(e.identity)?.quarantined === 1;
    const fresh =
      this.sql.exec(
        `INSERT OR IGNORE INTO earnings (job_id, identity, at, credit, tokens, withheld)
         VALUES (?, ?, ?, ?, ?, ?)`,
        e.jobId,
        e.identity,
        now,
        e.credit,
        e.tokens,
        withheld ? 1 : 0,
      ).rowsWritten > 0;
    if (fresh && e.credit > 0) {
      this.sql.exec(
        withheld
          ? `UPDATE accounts SET withheld = withheld + ?, updated_at = ? WHERE identity = ?`
          : `UPDATE accounts SET earned = earned + ?, updated_at = ? WHERE identity = ?`,
        e.credit,
        now,
        e.identity,
      );
      if (!withheld)
        this.sql.exec(
          `UPDATE accounts SET tokens = tokens + ?, jobs = jobs + 1 WHERE identity = ?`,
          e.tokens,
          e.identity,
        );
    }
    if (Math.random() < 0.01) {
      this.sql.exec(`DELETE FROM earnings WHERE at < ?`, now - EARNINGS_KEEP_MS);
      this.sql.exec(`DELETE FROM charges WHERE at < ?`, now - EARNINGS_KEEP_MS);
      this.sql.exec(`DELETE FROM take_backs WHERE at < ?`, now - TAKE_BACKS_KEEP_MS);
    }
    return this.account(e.identity);
  }

  /**
   * The identity's account. With `publicId` (a Region telling a tab that just joined) the account
   * is opened if it is new, so the contributor can link it before it has earned anything.
   */
  async balance(identity: string, publicId?: string): Promise<AccountView> {
    await this.ready();
    if (publicId !== undefined) this.ensure(identity, publicId, Date.now());
    return this.account(identity);
  }

  /** The identity was quarantined: its credit is withheld from now on and cannot be spent. */
  async quarantine(identity: string, publicId: string): Promise<void> {
    await this.ready();
    this.ensure(identity, publicId, Date.now());
    this.sql.exec(`UPDATE accounts SET quarantined = 1 WHERE identity = ?`, identity);
  }

  /**
   * Link an identity to an API key, on a proof the caller checked (link-proof.ts). Only an
   * identity that has connected as a tab has an account (so a flood of made-up key pairs opens
   * none); a proof older than the last one taken for it is refused, so an old proof cannot undo a
   * newer link.
   */
  async link(identity: string, keyId: string, signedAt: number): Promise<ProofOutcome> {
    await this.ready();
    const now = Date.now();
    const row = this.row(identity);
    if (!row) return "unknown";
    if (signedAt <= (row.link_signed_at ?? 0)) return "stale";
    this.sql.exec(
      `UPDATE accounts SET key_id = ?, link_signed_at = ?, updated_at = ? WHERE identity = ?`,
      keyId,
      signedAt,
      now,
      identity,
    );
    return "done";
  }

  /** Set (or clear, with null) the identity's public display name; already sanitized. */
  async setName(identity: string, name: string | null, signedAt: number): Promise<ProofOutcome> {
    await this.ready();
    const now = Date.now();
    const row = this.row(identity);
    if (!row) return "unknown";
    if (signedAt <= (row.name_signed_at ?? 0)) return "stale";
    if (row.name_signed_at !== null && signedAt - row.name_signed_at < NAME_CHANGE_MS)
      return "too_soon";
    this.sql.exec(
      `UPDATE accounts SET name = ?, name_signed_at = ?, updated_at = ? WHERE identity = ?`,
      name,
      signedAt,
      now,
      identity,
    );
    return "done";
  }

  /** What a key can spend: the balances of its linked identities not quarantined, less its holds. */
  async keyAccount(keyId: string): Promise<KeyAccount> {
    await this.ready();
    return this.keyView(keyId, Date.now());
  }

  /**
   * Set `amount` aside for a request about to wait in a queue with a paid place, under `holdId`
   * (minted by the Worker for this one job: queue-place.ts). True only when this call wrote the
   * hold: refused (false) when the key cannot cover it or the id already holds something; then
   * the request waits in the base tier's place.
   */
  async hold(holdId: string, keyId: string, amount: number): Promise<boolean> {
    await this.ready();
    const now = Date.now();
    if (!(amount > 0)) return false;
    if (this.keyView(keyId, now).available < amount) return false;
    return (
      this.sql.exec(
        `INSERT OR IGNORE INTO holds (hold_id, key_id, amount, created_at) VALUES (?, ?, ?, ?)`,
        holdId,
        keyId,
        amount,
        now,
      ).rowsWritten > 0
    );
  }

  /**
   * The job held for ended: charge `charge` (at most what was held) to the key's linked
   * identities — the largest balance first — and release the rest. Only the key that made the
   * hold settles it (a hold id and another key find nothing). Idempotent (the hold goes).
   * With `job` (the job and the completion tokens charged for) what each identity paid is kept, so
   * a count confirmed inflated later is refunded to them (take-backs.ts). Returns what was charged.
   */
  async settle(
    holdId: string,
    keyId: string,
    charge: number,
    job?: { jobId: string; tokens: number },
  ): Promise<number> {
    await this.ready();
    const hold = this.sql
      .exec<{ amount: number }>(
        `DELETE FROM holds WHERE hold_id = ? AND key_id = ? RETURNING amount`,
        holdId,
        keyId,
      )
      .toArray()[0];
    if (!hold) return 0;
    let left = Math.min(Math.max(0, charge), hold.amount);
    const charged = left;
    const now = Date.now();
    const parts: Array<{ identity: string; amount: number }> = [];
    for (const row of this.linked(keyId)) {
      if (left <= 0) break;
      const take = Math.min(left, Math.max(0, row.earned - row.spent));
      if (take <= 0) continue;
      this.sql.exec(
        `UPDATE accounts SET spent = spent + ?, updated_at = ? WHERE identity = ?`,
        take,
        now,
        row.identity,
      );
      parts.push({ identity: row.identity, amount: take });
      left -= take;
    }
    if (job && job.tokens > 0) recordCharges(this.sql, job.jobId, job.tokens, parts, now);
    return charged - left;
  }

  /**
   * A second binding verifier confirmed that the identity's count of a job was inflated: take
   * back the credit paid for its tokens over `keepTokens` (what the balance holds of it) and give
   * the client back what it paid for them; then re-price the identity's other answers of the last
   * day at the same share (take-backs.ts `takeBackAlike`). Once per (job, identity): a repeat
   * changes nothing.
   */
  async takeBack(t: TakeBack): Promise<TakenBackAll & { account: AccountView }> {
    await this.ready();
    const done = this.ctx.storage.transactionSync((): TakenBackAll => {
      const now = Date.now();
      const one = takeBack(this.sql, t, now);
      if (!one.fresh || one.tokens === 0) return { ...one, alike: noneAlike() };
      const alike = takeBackAlike(
        this.sql,
        { jobId: t.jobId, identity: t.identity, keepShare: one.keepShare },
        now,
      );
      if (alike.answers > 0)
        // The statement's line says why `taken_back` grew by more than this answer's tokens.
        this.sql.exec(
          `UPDATE take_backs SET reason = reason || ? WHERE job_id = ? AND identity = ?`,
          `; ${alike.answers} other answers of the last day re-priced at the same share`,
          t.jobId,
          t.identity,
        );
      return { ...one, alike };
    });
    return { ...done, account: this.account(t.identity) };
  }

  /**
   * A Region's outbox, in order (ledger-outbox.ts): each operation runs as its own call would, and
   * one that throws is answered `ok: false` without stopping the rest, so one bad operation cannot
   * hold a Region's line up. A batch sent again after a lost answer changes nothing: every kind is
   * idempotent (ledger-types.ts `LedgerOp`).
   */
  async apply(ops: LedgerOp[]): Promise<LedgerOpResult[]> {
    await this.ready();
    const results: LedgerOpResult[] = [];
    for (const op of ops) {
      try {
        results.push(await this.applyOne(op));
      } catch (err) {
        log("warn", "ledger refused an operation", { kind: op.kind, error: String(err) });
        results.push({ ok: false, error: String(err) });
      }
    }
    return results;
  }

  private async applyOne(op: LedgerOp): Promise<LedgerOpResult> {
    switch (op.kind) {
      case "earn":
        return { ok: true, kind: op.kind, account: await this.earn(op.earning) };
      case "quarantine":
        await this.quarantine(op.identity, op.publicId);
        return { ok: true, kind: op.kind, account: this.account(op.identity) };
      case "settle":
        return {
          ok: true,
          kind: op.kind,
          charged: await this.settle(op.holdId, op.keyId, op.charge, op.job),
        };
      case "takeBack":
        return { ok: true, kind: op.kind, done: await this.takeBack(op.takeBack) };
      default: {
        const unreachable: never = op;
        return unreachable;
      }
    }
  }

  /** The public list: most credit earned first; public ids and opted-in names only. */
  async top(limit: number): Promise<TopContributor[]> {
    await this.ready();
    return this.sql
      .exec<{
        public_id: string;
        name: string | null;
        earned: number;
        tokens: number;
        jobs: number;
      }>(
        `SELECT public_id, name, earned, tokens, jobs FROM accounts
         WHERE quarantined = 0 AND earned > 0 ORDER BY earned DESC, public_id LIMIT ?`,
        Math.max(0, Math.min(MAX_TOP, Math.floor(limit))),
      )
      .toArray()
      .map((r) => ({
        public_id: r.public_id,
        name: r.name,
        credits: round(r.earned),
        tokens: r.tokens,
        jobs: r.jobs,
      }));
  }

  private keyView(keyId: string, now: number): KeyAccount {
    this.sql.exec(`DELETE FROM holds WHERE created_at < ?`, now - HOLD_TTL_MS);
    const identities = this.linked(keyId);
    const balance = identities.reduce((s, r) => s + Math.max(0, r.earned - r.spent), 0);
    const held =
      this.sql
        .exec<{ held: number | null }>(
          `SELECT sum(amount) AS held FROM holds WHERE key_id = ?`,
          keyId,
        )
        .one().held ?? 0;
    return {
      balance: round(balance),
      held: round(held),
      available: round(balance - held),
      identities: identities.map((r) => r.public_id),
    };
  }

  /** Linked identities that may spend (not quarantined), largest balance first. */
  private linked(keyId: string): AccountRow[] {
    return this.sql
      .exec<AccountRow>(
        `SELECT * FROM accounts WHERE key_id = ? AND quarantined = 0
         ORDER BY earned - spent DESC, identity`,
        keyId,
      )
      .toArray();
  }

  private ensure(identity: string, publicId: string, now: number): void {
    this.sql.exec(
      `INSERT OR IGNORE INTO accounts (identity, public_id, updated_at) VALUES (?, ?, ?)`,
      identity,
      publicId,
      now,
    );
  }

  private row(identity: string): AccountRow | undefined {
    return this.sql
      .exec<AccountRow>(`SELECT * FROM accounts WHERE identity = ?`, identity)
      .toArray()[0];
  }

  private account(identity: string): AccountView {
    const r = this.row(identity);
    const why = lastTakeBack(this.sql, identity);
    return {
      balance: round((r?.earned ?? 0) - (r?.spent ?? 0)),
      earned: round(r?.earned ?? 0),
      spent: round(r?.spent ?? 0),
      withheld: round(r?.withheld ?? 0),
      takenBack: round(r?.taken_back ?? 0),
      ...(why ? { lastTakeBack: why } : {}),
      quarantined: r?.quarantined === 1,
      linked: (r?.key_id ?? null) !== null,
    };
  }
}

/** Credit is kept to a thousandth (weights and prices may be fractional). */
function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
