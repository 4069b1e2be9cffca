import type { BenchmarkResult } from "../../shared/gpu/classify.js";
import { CreditBalanceSchema, type CreditBalance } from "../../shared/protocol/node-messages.js";
import { DEFAULT_SETTINGS, normalizeSettings, type ControlSettings } from "../control/settings.js";
import type { JobEnd } from "../runtime/job-runner.js";
import {
  addToDay,
  LEDGER_SCHEMA_VERSION,
  LedgerDb,
  localDay,
  type DayRow,
  type JobRow,
} from "./ledger-db.js";

/**
 * What the page does with the ledger: record jobs (updating the day's totals in the same
 * transaction), read totals for the dashboard, keep settings, identity and benchmarks, export JSON.
 */
export interface Totals {
  today: { jobs: number; tokens: number; credit: number | null };
  total: { jobs: number; tokens: number; credit: number | null };
  /** The identity's account in the coordinator's credit ledger, as last reported; null before. */
  account: StoredBalance | null;
}

/** A `credit.balance` as the page keeps it (without the wire's `type`). */
export type StoredBalance = Omit<CreditBalance, "type"> & { at: number };

/** Key of the coordinator's last reported balance in the `identity` table. */
const BALANCE_KEY = "creditBalance";

export class Ledger {
  constructor(readonly db: LedgerDb = new LedgerDb()) {}

  async recordJob(end: JobEnd): Promise<JobRow> {
    const row: JobRow = {
      jobId: end.jobId,
      at: end.startedAt,
      day: localDay(end.startedAt),
      model: end.model,
      outcome: end.outcome,
      promptTokens: end.promptTokens,
      completionTokens: end.completionTokens,
      durationMs: Math.round(end.durationMs),
      decodeTokensPerSecond: end.decodeTokensPerSecond,
      credit: null,
    };
    await this.db.transaction("rw", this.db.jobs, this.db.days, async () => {
      row.id = await this.db.jobs.add(row);
      await this.db.days.put(addToDay(await this.db.days.get(row.day), row));
    });
    return row;
  }

  /** Credit for a job as the coordinator reports it (adds to that job's day). */
  async recordCredit(jobId: string, credit: number): Promise<void> {
    await this.db.transaction("rw", this.db.jobs, this.db.days, async () => {
      const job = await this.db.jobs.where("jobId").equals(jobId).first();
      if (!job || job.id === undefined) return;
      const delta = credit - (job.credit ?? 0);
      await this.db.jobs.update(job.id, { credit });
      const day = await this.db.days.get(job.day);
      if (day) await this.db.days.put({ ...day, credit: (day.credit ?? 0) + delta });
    });
  }

  /** The coordinator's balance for this tab's identity, replacing the last one (never summed here). */
  async recordBalance(balance: CreditBalance, now: number = Date.now()): Promise<void> {
    const { type: _type, ...kept } = balance;
    await this.db.identity.put({ key: BALANCE_KEY, value: JSON.stringify({ ...kept, at: now }) });
  }

  async account(): Promise<StoredBalance | null> {
    const row = await this.db.identity.get(BALANCE_KEY);
    if (!row) return null;
    try {
      const parsed = JSON.parse(row.value) as { at?: unknown };
      const checked = CreditBalanceSchema.omit({ type: true }).safeParse(parsed);
      return checked.success && typeof parsed.at === "number"
        ? { ...checked.data, at: parsed.at }
        : null;
    } catch {
      return null;
    }
  }

  async totals(now: number = Date.now()): Promise<Totals> {
    const account = await this.account();
    const days = await this.db.days.toArray();
    const today = days.find((d) => d.day === localDay(now));
    const sumCredit = (rows: DayRow[]) =>
      rows.some((d) => d.credit !== null) ? rows.reduce((s, d) => s + (d.credit ?? 0), 0) : null;
    return {
      today: {
        jobs: today?.jobs ?? 0,
        tokens: today?.tokens ?? 0,
        credit: today?.credit ?? null,
      },
      total: {
        jobs: days.reduce((s, d) => s + d.jobs, 0),
        tokens: days.reduce((s, d) => s + d.tokens, 0),
        credit: sumCredit(days),
      },
      account,
    };
  }

  /** The last `n` days, oldest first, with empty days filled in. */
  async lastDays(n = 30, now: number = Date.now()): Promise<DayRow[]> {
    const byDay = new Map((await this.db.days.toArray()).map((d) => [d.day, d]));
    const out: DayRow[] = [];
    for (let i = n - 1; i >= 0; i--) {
      const t = new Date(now);
      t.setDate(t.getDate() - i);
      const day = localDay(t.getTime());
      out.push(byDay.get(day) ?? { day, jobs: 0, tokens: 0, gpuMs: 0, credit: null });
    }
    return out;
  }

  async recentJobs(n = 40): Promise<JobRow[]> {
    return (await this.db.jobs.orderBy("at").reverse().limit(n).toArray()).reverse();
  }

  async settings(): Promise<ControlSettings> {
    const row = await this.db.settings.get("control");
    return row ? normalizeSettings(row.value as Partial<ControlSettings>) : DEFAULT_SETTINGS;
  }

  async saveSettings(s: ControlSettings): Promise<void> {
    await this.db.settings.put({ key: "control", value: s });
  }

  async setIdentity(key: string, value: string): Promise<void> {
    await this.db.identity.put({ key, value });
  }

  async benchmark(adapter: string): Promise<BenchmarkResult | null> {
    return (await this.db.benchmarks.get(adapter))?.result ?? null;
  }

  async saveBenchmark(adapter: string, result: BenchmarkResult): Promise<void> {
    await this.db.benchmarks.put({ adapter, at: Date.now(), result });
  }

  /** Everything in the ledger as one JSON document. */
  async exportJson(): Promise<string> {
    const [jobs, days, settings, identity, benchmarks] = await Promise.all([
      this.db.jobs.toArray(),
      this.db.days.toArray(),
      this.db.settings.toArray(),
      this.db.identity.toArray(),
      this.db.benchmarks.toArray(),
    ]);
    return JSON.stringify(
      {
        format: "tabgrid-ledger",
        schemaVersion: LEDGER_SCHEMA_VERSION,
        exportedAt: new Date().toISOString(),
        jobs,
        days,
        settings,
        identity,
        benchmarks,
      },
      null,
      2,
    );
  }
}

export function adapterKey(a: { vendor: string; architecture: string; description: string }) {
  return `${a.vendor}|${a.architecture}|${a.description}`;
}
