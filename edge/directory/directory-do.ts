import { DurableObject } from "cloudflare:workers";
import type { AppEnv } from "../env.js";
import type { RegionSummary } from "../region/region-views.js";

export type DirectorySnapshot = Record<string, RegionSummary & { updatedAt: number }>;

/**
 * The one global Directory Durable Object: a short summary per region (models served, idle and
 * busy tabs, queue), pushed by the Region objects when it changes. The Worker reads it for
 * `GET /v1/models` and to choose spillover regions; it never sees individual tabs.
 */
export class DirectoryDurableObject extends DurableObject<AppEnv> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS regions (
      region TEXT PRIMARY KEY, summary TEXT NOT NULL, updated_at INTEGER NOT NULL)`);
  }

  async report(region: string, summary: RegionSummary): Promise<void> {
    this.sql.exec(
      `INSERT OR REPLACE INTO regions (region, summary, updated_at) VALUES (?, ?, ?)`,
      region,
      JSON.stringify(summary),
      Date.now(),
    );
  }

  async snapshot(): Promise<DirectorySnapshot> {
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
}
