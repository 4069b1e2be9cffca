import Dexie, { type Table } from "dexie";
import type { BenchmarkResult } from "../../shared/gpu/classify.js";

/**
 * The tab's local ledger in IndexedDB (dexie): the jobs it served, daily totals, the contributor's
 * settings, the tab's identity and its last benchmark per adapter. Nothing here leaves the machine
 * except through "Export JSON".
 *
 * Schema versions (dexie upgrades run in order, inside one transaction, when the page opens an
 * older database):
 *   1 — jobs, settings.
 *   2 — daily totals (`days`, backfilled from the jobs already recorded), identity, benchmarks.
 */
export const LEDGER_DB_NAME = "tabgrid-ledger";
export const LEDGER_SCHEMA_VERSION = 2;

export interface JobRow {
  id?: number;
  jobId: string;
  /** When the job started, ms since the epoch. */
  at: number;
  /** Local calendar day of `at`, YYYY-MM-DD. */
  day: string;
  model: string;
  outcome: "done" | "aborted" | "failed";
  promptTokens: number;
  completionTokens: number;
  durationMs: number;
  decodeTokensPerSecond: number | null;
  /** Credit as the coordinator reported it; null until it does (never estimated here). */
  credit: number | null;
}

export interface DayRow {
  day: string;
  jobs: number;
  tokens: number;
  gpuMs: number;
  /** Sum of reported credit; null while no job of the day has reported credit. */
  credit: number | null;
}

export interface KeyValue<T = unknown> {
  key: string;
  value: T;
}

export interface BenchmarkRow {
  /** vendor|architecture|description of the adapter it was measured on. */
  adapter: string;
  at: number;
  result: BenchmarkResult;
}

export function localDay(t: number): string {
  const d = new Date(t);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Add one job to a day's totals (failed jobs count nothing; aborted ones count their GPU time). */
export function addToDay(day: DayRow | undefined, job: JobRow): DayRow {
  const d: DayRow = day ?? { day: job.day, jobs: 0, tokens: 0, gpuMs: 0, credit: null };
  return {
    day: d.day,
    jobs: d.jobs + (job.outcome === "done" ? 1 : 0),
    tokens: d.tokens + (job.outcome === "failed" ? 0 : job.completionTokens),
    gpuMs: d.gpuMs + job.durationMs,
    credit: job.credit === null ? d.credit : (d.credit ?? 0) + job.credit,
  };
}

export class LedgerDb extends Dexie {
  jobs!: Table<JobRow, number>;
  days!: Table<DayRow, string>;
  settings!: Table<KeyValue, string>;
  identity!: Table<KeyValue<string>, string>;
  benchmarks!: Table<BenchmarkRow, string>;

  constructor(name: string = LEDGER_DB_NAME) {
    super(name);
    this.version(1).stores({ jobs: "++id, jobId, at", settings: "key" });
    this.version(2)
      .stores({
        jobs: "++id, jobId, at, day",
        days: "day",
        settings: "key",
        identity: "key",
        benchmarks: "adapter",
      })
      .upgrade(async (tx) => {
        // Version 1 rows had no `day` and no credit field: derive both, then backfill the totals.
        const totals = new Map<string, DayRow>();
        await tx
          .table<JobRow, number>("jobs")
          .toCollection()
          .modify((row) => {
            row.day ??= localDay(row.at);
            row.credit ??= null;
            totals.set(row.day, addToDay(totals.get(row.day), row));
          });
        await tx.table<DayRow, string>("days").bulkPut([...totals.values()]);
      });
  }
}
