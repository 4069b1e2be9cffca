import { DurableObject } from "cloudflare:workers";
import { alertConfig } from "../alerts/alert-config.js";
import { ALERT_MIGRATIONS, AlertCheck } from "../alerts/alert-check.js";
import { log } from "../http/log.js";
import { timingSafeEqual } from "../auth/secret.js";
import type { Migration } from "../durable/migrations.js";
import { startUp, type Ready } from "../durable/start-up.js";
import type { AppEnv } from "../env.js";
import type { RegionSummary } from "../region/region-views.js";
import type { ShardFigures } from "../region/shard-figures.js";
import { evenLeaves, splitLeaf, type ShardLeaf } from "../region/shard-map.js";
import { parseShard } from "../region/shard-name.js";

/**
 * One row per Region object that reported, keyed by its name: the location hint for shard 0
 * (`wnam`), `wnam/3` for the others (edge/region/shard-name.ts). `shard` is what routing between
 * a hint's shards reads (absent in reports from objects before sharding).
 */
export type DirectorySnapshot = Record<
  string,
  RegionSummary & { updatedAt: number; shard?: ShardFigures }
>;

/** What the Worker routes by: every object's summary and, per hint with a stored layout, its shards. */
export interface RoutingView {
  summaries: DirectorySnapshot;
  shards: Record<string, ShardLeaf[]>;
}

/** What the key directory knows about a key id (see `checkKey`). */
export type KeyCheck = "valid" | "revoked" | "unknown";

/** Step 1 is the schema as first shipped (IF NOT EXISTS, so existing objects migrate cleanly). */
export const DIRECTORY_MIGRATIONS: readonly Migration[] = [
  `CREATE TABLE IF NOT EXISTS regions (
    region TEXT PRIMARY KEY, summary TEXT NOT NULL, updated_at INTEGER NOT NULL)`,
  // Key directory: which key ids exist, so a request with a made-up key is refused before any
  // per-key object is created (docs/limits.md).
  `CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)`,
  // HTTP requests by route and status, summed from every Worker isolate (the `metrics` object).
  `CREATE TABLE IF NOT EXISTS http_requests (
    route TEXT NOT NULL, status INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (route, status))`,
  // Alerts (edge/alerts/alert-check.ts): models last served, audit totals, open episodes, outbox.
  ...ALERT_MIGRATIONS,
  // Region shards (edge/region/shard-map.ts): the leaves of each hint that was split or configured;
  // a hint without rows has REGION_SHARDS even shards.
  `CREATE TABLE IF NOT EXISTS shards (
    hint TEXT NOT NULL, k INTEGER NOT NULL, depth INTEGER NOT NULL, PRIMARY KEY (hint, k))`,
];

/** One counter of the HTTP request totals (edge/api/metrics.ts). */
export interface RequestCount {
  route: string;
  status: number;
  count: number;
}

/**
 * Directory objects answer "what exists" questions for the Worker, which never sees individual
 * tabs or keys' limits:
 * - `global`: a short summary per region (models served, idle and busy tabs, queue), pushed by the
 *   Region objects when it changes; read for `GET /v1/models` and to choose spillover regions.
 * - `keys:<0-f>`: the key directory, sharded by the first hex digit of the key id (a fixed set of
 *   16 objects, never a caller-chosen name): each key's hash and revocation, written by the key's
 *   Client object, read by authentication before any per-key object is touched.
 * - `metrics`: HTTP request totals by route and status, which each Worker isolate adds to every
 *   few seconds (edge/api/metrics.ts); read by GET /metrics.
 *
 * `global` also holds the shard layout of each location hint (which Region objects serve it) and
 * changes it when a shard splits (`splitShard`); the Worker reads it with the summaries
 * (`routing`) to place tabs and requests on shards.
 *
 * `global` also runs the alert check (edge/alerts/) on its alarm, from the summaries it holds,
 * while the alert webhook is configured; the first report after start-up arms it.
 */
export class DirectoryDurableObject extends DurableObject<AppEnv> {
  private readonly ready: Ready;
  private readonly sql: SqlStorage;
  readonly alerts: AlertCheck;
  /** An alarm is set (so reports need not ask storage each time). */
  private armed = false;
  /** When reports arrive and alerts are checked (a test moves it forward). */
  clock: () => number = Date.now;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.ready = startUp(ctx, { migrations: DIRECTORY_MIGRATIONS });
    this.alerts = new AlertCheck(this.sql, alertConfig(env), undefined, () => this.clock());
  }

  async report(region: string, summary: RegionSummary & { shard?: ShardFigures }): Promise<void> {
    await this.ready();
    this.sql.exec(
      `INSERT OR REPLACE INTO regions (region, summary, updated_at) VALUES (?, ?, ?)`,
      region,
      JSON.stringify(summary),
      this.clock(),
    );
    await this.armAlerts();
  }

  /** Make sure the alert check runs (only while the webhook is configured). */
  async armAlerts(): Promise<void> {
    if (this.armed || !this.alerts.config) return;
    this.armed = true;
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + this.alerts.config.checkMs);
  }

  /** The alert check; re-armed while alerts are on. A failed check is logged, not retried at once. */
  override async alarm(): Promise<void> {
    await this.ready();
    try {
      await this.alerts.check(await this.snapshot());
    } catch (e) {
      log("error", "alert check failed", { error: String(e) });
    }
    this.armed = !!this.alerts.config;
    if (this.alerts.config)
      await this.ctx.storage.setAlarm(Date.now() + this.alerts.config.checkMs);
  }

  async snapshot(): Promise<DirectorySnapshot> {
    await this.ready();
    const out: DirectorySnapshot = {};
    for (const row of this.sql.exec<{ region: string; summary: string; updated_at: number }>(
      `SELECT * FROM regions`,
    )) {
      out[row.region] = {
        ...(JSON.parse(row.summary) as RegionSummary),
        updatedAt: row.updated_at,
      };
    }
    return out;
  }

  /** Summaries and shard layouts in one read, for the Worker's routing (directory-client.ts). */
  async routing(): Promise<RoutingView> {
    const summaries = await this.snapshot();
    const shards: Record<string, ShardLeaf[]> = {};
    for (const row of this.sql.exec<{ hint: string; k: number; depth: number }>(
      `SELECT hint, k, depth FROM shards ORDER BY hint, k`,
    ))
      (shards[row.hint] ??= []).push({ k: row.k, depth: row.depth });
    return { summaries, shards };
  }

  /**
   * Split shard `k` of `hint` (its layout starting from `initial` even shards when none is stored)
   * and return the new leaves. The caller passes the depth it believes it has (null: it has not
   * split before and does not know), so a retried call does not split twice.
   */
  async splitShard(
    hint: string,
    k: number,
    fromDepth: number | null,
    initial: number,
  ): Promise<ShardLeaf[]> {
    await this.ready();
    if (!parseShard(hint) || hint.includes("/")) throw new Error(`not a location hint: ${hint}`);
    const leaves = this.leavesOf(hint, initial);
    const leaf = leaves.find((l) => l.k === k);
    if (!leaf || (fromDepth !== null && leaf.depth !== fromDepth)) return leaves;
    const next = splitLeaf(leaves, k);
    this.storeLeaves(hint, next);
    return next;
  }

  /** Set a hint's layout to `count` even shards (operators; tests). Tabs already placed stay. */
  async setShards(hint: string, count: number): Promise<ShardLeaf[]> {
    await this.ready();
    if (!parseShard(hint) || hint.includes("/")) throw new Error(`not a location hint: ${hint}`);
    const leaves = evenLeaves(count);
    this.storeLeaves(hint, leaves);
    return leaves;
  }

  private leavesOf(hint: string, initial: number): ShardLeaf[] {
    const rows = this.sql
      .exec<{ k: number; depth: number }>(
        `SELECT k, depth FROM shards WHERE hint = ? ORDER BY k`,
        hint,
      )
      .toArray();
    return rows.length > 0 ? rows.map((r) => ({ k: r.k, depth: r.depth })) : evenLeaves(initial);
  }

  private storeLeaves(hint: string, leaves: readonly ShardLeaf[]): void {
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(`DELETE FROM shards WHERE hint = ?`, hint);
      for (const { k, depth } of leaves)
        this.sql.exec(`INSERT INTO shards (hint, k, depth) VALUES (?, ?, ?)`, hint, k, depth);
    });
  }

  /** Add request counts (deltas from one Worker isolate) to the totals. */
  async addRequests(counts: RequestCount[]): Promise<void> {
    await this.ready();
    for (const { route, status, count } of counts.slice(0, 500)) {
      this.sql.exec(
        `INSERT INTO http_requests (route, status, count) VALUES (?, ?, ?)
         ON CONFLICT (route, status) DO UPDATE SET count = count + excluded.count`,
        route.slice(0, 100),
        status,
        count,
      );
    }
  }

  async requestCounts(): Promise<RequestCount[]> {
    await this.ready();
    return this.sql
      .exec<{ route: string; status: number; count: number }>(
        `SELECT route, status, count FROM http_requests ORDER BY route, status`,
      )
      .toArray()
      .map((r) => ({ route: r.route, status: r.status, count: r.count }));
  }

  /** Record (or refresh) a key's hash and revocation; called by the key's Client object. */
  async registerKey(id: string, keyHash: string, revoked: boolean): Promise<void> {
    await this.ready();
    this.sql.exec(
      `INSERT OR REPLACE INTO keys (id, key_hash, revoked) VALUES (?, ?, ?)`,
      id,
      keyHash,
      revoked ? 1 : 0,
    );
  }

  /** Is `keyHash` the hash of key `id`? Read-only: an unknown key leaves nothing behind. */
  async checkKey(id: string, keyHash: string): Promise<KeyCheck> {
    await this.ready();
    const row = this.sql
      .exec<{ key_hash: string; revoked: number }>(
        `SELECT key_hash, revoked FROM keys WHERE id = ?`,
        id,
      )
      .toArray()[0];
    if (!row || !timingSafeEqual(row.key_hash, keyHash)) return "unknown";
    return row.revoked ? "revoked" : "valid";
  }
}
