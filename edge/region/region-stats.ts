import { plausibleDecodeMaxTps } from "../../shared/gpu/plausible.js";
import type { JobRow } from "./job-store.js";
import {
  STATS_WINDOWS,
  type Quantiles,
  type StatsWindow,
} from "../../shared/status/status-views.js";

/**
 * Rolling telemetry of one Region object: requests, time to first token (TTFT) and decode speed
 * (tokens/s), as bucketed histograms in fixed time slots — never a row per request. One-minute
 * slots cover the last hour (the 5-minute and 1-hour windows), one-hour slots the last day, and a
 * lifetime total backs the Prometheus counters. At most 60 + 24 + 1 rows, each a small JSON blob
 * in this object's SQLite (a table of its own, created here, so it needs no entry in the region's
 * migration list); eviction loses nothing.
 *
 * Everything here is observed by the coordinator: TTFT is from the job being written to its first
 * delivered text (what the client waited), speed is the serving tab's completion tokens — capped at
 * the characters it actually delivered, since a tab's usage is only a claim — over its decode time,
 * taken as at least what the fastest plausible GPU needs for those tokens (`decodeTime`).
 */

/** Upper bounds (ms) of the TTFT buckets; one more bucket (+Inf) holds the rest. */
export const TTFT_BOUNDS_MS = [
  50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000,
] as const;
/** Upper bounds (tokens/s) of the decode-speed buckets; one more bucket (+Inf) holds the rest. */
export const TPS_BOUNDS = [1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250, 500] as const;

export { STATS_WINDOWS, type Quantiles, type StatsWindow };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** A tab may announce any model name: past this many per slot, the rest count as "(other)". */
const MAX_MODELS_PER_SLOT = 24;
const OTHER_MODEL = "(other)";

/** Mergeable counts (sums and histogram buckets), the same shape for a slot, a window, a total. */
export interface StatsCounts {
  /** Jobs that ended, by how. `failedOver` counts moves to another tab (the job went on). */
  done: number;
  failed: number;
  cancelled: number;
  failedOver: number;
  /** TTFT histogram (bucket counts, TTFT_BOUNDS_MS + one overflow bucket), sum and count. */
  ttft: number[];
  ttftSumMs: number;
  /** Decode speed histogram of finished jobs (TPS_BOUNDS + one overflow bucket). */
  tps: number[];
  tokens: number;
  decodeMs: number;
  /**
   * Hedged first tokens (edge/region/hedging.ts): jobs started on a second tab too, races the
   * second tab won, and the time the losing tabs worked before their cancel — what hedging cost.
   */
  hedged: number;
  hedgeWon: number;
  hedgeLoserMs: number;
}

/** Per model inside a slot: enough for a served tokens/s and a mean service time. */
export interface ModelCounts {
  done: number;
  tokens: number;
  decodeMs: number;
  /** Sum over finished jobs of the time from first token to done plus TTFT (for wait estimates). */
  serviceMs: number;
}

interface Slot extends StatsCounts {
  models: Record<string, ModelCounts>;
}

/** One window as a Region reports it: the counts (mergeable across regions) and its quantiles. */
export interface WindowStats extends StatsCounts {
  /** Jobs that ended in the window (done + failed + cancelled). */
  requests: number;
  ttftMs: Quantiles | null;
  tokensPerS: Quantiles | null;
}

export interface RegionStatsSummary {
  /** When these figures were computed (ms since epoch). */
  at: number;
  windows: Record<StatsWindow, WindowStats>;
  /** Since the region's telemetry began: the monotonic counters /metrics exposes. */
  total: StatsCounts;
  /**
   * Per model, over the last hour: served decode speed and mean service time (null: no data),
   * with the counts behind them so that regions can be merged.
   */
  models: Record<string, ModelCounts & { tokensPerS: number | null; meanServiceMs: number | null }>;
}

export function emptyCounts(): StatsCounts {
  return {
    done: 0,
    failed: 0,
    cancelled: 0,
    failedOver: 0,
    ttft: new Array<number>(TTFT_BOUNDS_MS.length + 1).fill(0),
    ttftSumMs: 0,
    tps: new Array<number>(TPS_BOUNDS.length + 1).fill(0),
    tokens: 0,
    decodeMs: 0,
    hedged: 0,
    hedgeWon: 0,
    hedgeLoserMs: 0,
  };
}

/** Add `b` into `a` (histograms bucket by bucket). */
export function addCounts(a: StatsCounts, b: StatsCounts): StatsCounts {
  a.done += b.done;
  a.failed += b.failed;
  a.cancelled += b.cancelled;
  a.failedOver += b.failedOver;
  b.ttft.forEach((n, i) => (a.ttft[i] = (a.ttft[i] ?? 0) + n));
  a.ttftSumMs += b.ttftSumMs;
  b.tps.forEach((n, i) => (a.tps[i] = (a.tps[i] ?? 0) + n));
  a.tokens += b.tokens;
  a.decodeMs += b.decodeMs;
  // A region still running the code before hedging was counted reports no such fields.
  a.hedged += b.hedged ?? 0;
  a.hedgeWon += b.hedgeWon ?? 0;
  a.hedgeLoserMs += b.hedgeLoserMs ?? 0;
  return a;
}

function bucketOf(bounds: readonly number[], value: number): number {
  const i = bounds.findIndex((b) => value <= b);
  return i < 0 ? bounds.length : i;
}

/**
 * The q-quantile of a bucketed histogram, interpolated linearly inside its bucket (as Prometheus'
 * histogram_quantile does); a quantile in the overflow bucket reports the last finite bound.
 * Null for an empty histogram.
 */
export function quantile(
  bounds: readonly number[],
  counts: number[],
  q: number,
  step = 0.1,
): number | null {
  const total = counts.reduce((s, n) => s + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1] ?? 0;
      const lower = i === 0 ? 0 : (bounds[i - 1] ?? 0);
      const upper = bounds[i] ?? lower;
      const value = lower + ((upper - lower) * (rank - below)) / n;
      return Math.round(value / step) * step;
    }
    below += n;
  }
  return bounds[bounds.length - 1] ?? 0;
}

/** p50/p95/p99, rounded to `step` (whole milliseconds for TTFT, tenths for tokens/s). */
function quantiles(bounds: readonly number[], counts: number[], step: number): Quantiles | null {
  const at = (q: number) => quantile(bounds, counts, q, step);
  const p50 = at(0.5);
  if (p50 === null) return null;
  const round = (v: number) => Math.round(v * 10) / 10;
  return { p50: round(p50), p95: round(at(0.95) ?? p50), p99: round(at(0.99) ?? p50) };
}

/** A window's counts with its request count and quantiles. */
export function windowStats(counts: StatsCounts): WindowStats {
  return {
    ...counts,
    requests: counts.done + counts.failed + counts.cancelled,
    ttftMs: quantiles(TTFT_BOUNDS_MS, counts.ttft, 1),
    tokensPerS: quantiles(TPS_BOUNDS, counts.tps, 0.1),
  };
}

function emptySlot(): Slot {
  return { ...emptyCounts(), models: {} };
}

/**
 * A finished job's decode time for the speed figures: from its first delivered text to its done,
 * but never less than `tokens` take at the model's plausible ceiling (shared/gpu/plausible.ts).
 * When its text arrives and when it says done is the tab's to choose: one that sends the whole
 * answer in one frame and done at once showed ~1 ms of decoding, and its model 500,000 tokens/s.
 * Such a job counts at the ceiling rather than not at all: its tokens were served (the counters of
 * tokens served stay whole), and leaving it out would stop only a careless liar — one that waits
 * tokens ÷ ceiling before its done looks the same as an honest tab at the ceiling anyway.
 */
export function decodeTime(model: string, tokens: number, observedMs: number): number {
  return Math.max(1, observedMs, Math.ceil((tokens * 1000) / plausibleDecodeMaxTps(model)));
}

export class RegionStats {
  /** Slots by key: `m:<minute start>`, `h:<hour start>`, and `total`. */
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly clock: () => number = Date.now,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS region_stats (slot TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    for (const row of sql.exec<{ slot: string; data: string }>(`SELECT * FROM region_stats`)) {
      this.slots.set(row.slot, { ...emptySlot(), ...(JSON.parse(row.data) as Partial<Slot>) });
    }
  }

  /** The job's first text reached the client (hook: text-delivery, delta with seq 0). */
  firstToken(row: JobRow | undefined): void {
    // Only the job's first delivered text counts: a later attempt's first delta is not a TTFT.
    if (!row || row.attempt_start_chars > 0) return;
    const ms = Math.max(0, this.clock() - row.created_at);
    this.update(row.model, (c) => {
      c.ttft[bucketOf(TTFT_BOUNDS_MS, ms)]! += 1;
      c.ttftSumMs += ms;
    });
  }

  /** The job reached a terminal state (hook: job-machine `settle`). */
  settled(row: JobRow | undefined): void {
    if (!row) return;
    const now = this.clock();
    const state = row.state;
    if (state === "done") {
      const own = row.text.length - row.attempt_start_chars;
      const tokens = Math.max(0, Math.min(row.completion_tokens ?? 0, own));
      const decodeMs = row.first_token_at
        ? decodeTime(row.model, tokens, now - row.first_token_at)
        : null;
      this.update(row.model, (c, m) => {
        c.done += 1;
        m.done += 1;
        m.serviceMs += now - (row.dispatched_at ?? row.created_at);
        if (decodeMs === null || tokens === 0) return;
        c.tps[bucketOf(TPS_BOUNDS, (tokens * 1000) / decodeMs)]! += 1;
        c.tokens += tokens;
        c.decodeMs += decodeMs;
        m.tokens += tokens;
        m.decodeMs += decodeMs;
      });
    } else if (state === "failed" || state === "cancelled") {
      this.update(row.model, (c) => (c[state] += 1));
    }
  }

  /** The job moved to another tab after its tab failed (hook: job-machine `redispatch`). */
  failedOver(row: JobRow | undefined): void {
    if (row) this.update(row.model, (c) => (c.failedOver += 1));
  }

  /** The job was started on a second tab too (hook: Hedging.start). */
  hedged(model: string): void {
    this.update(model, (c) => (c.hedged += 1));
  }

  /** The second tab sent the first token, and the job moved to it (hook: Hedging.hedgeDelta). */
  hedgeWon(model: string): void {
    this.update(model, (c) => (c.hedgeWon += 1));
  }

  /** A losing tab was cancelled after working `ms` on the job (hook: Hedging's cancel). */
  hedgeLoser(model: string, ms: number): void {
    this.update(model, (c) => (c.hedgeLoserMs += Math.max(0, ms)));
  }

  /**
   * New requests waiting for their first tab, per model (read-only look at the jobs table; the
   * same count as JobStore.waitingCount, split by model).
   */
  queuedByModel(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const row of this.sql.exec<{ model: string; n: number }>(
      `SELECT model, count(*) AS n FROM jobs WHERE state = 'queued' AND attempts = 0 GROUP BY model`,
    ))
      out[row.model] = row.n;
    return out;
  }

  /** The windows, totals and per-model figures, now. */
  summary(): RegionStatsSummary {
    const now = this.clock();
    const minute = now - (now % MINUTE);
    const hour = now - (now % HOUR);
    const sum = (keys: string[]) =>
      keys.reduce((acc, k) => {
        const s = this.slots.get(k);
        return s ? addCounts(acc, s) : acc;
      }, emptyCounts());
    const minutes = (n: number) => Array.from({ length: n }, (_, i) => `m:${minute - i * MINUTE}`);
    const hours = Array.from({ length: 24 }, (_, i) => `h:${hour - i * HOUR}`);
    const models: RegionStatsSummary["models"] = {};
    const byModel = new Map<string, ModelCounts>();
    for (const key of minutes(60)) {
      for (const [model, m] of Object.entries(this.slots.get(key)?.models ?? {})) {
        const acc = byModel.get(model) ?? { done: 0, tokens: 0, decodeMs: 0, serviceMs: 0 };
        acc.done += m.done;
        acc.tokens += m.tokens;
        acc.decodeMs += m.decodeMs;
        acc.serviceMs += m.serviceMs;
        byModel.set(model, acc);
      }
    }
    for (const [model, m] of byModel) {
      models[model] = {
        ...m,
        tokensPerS: m.decodeMs > 0 ? Math.round((m.tokens * 10_000) / m.decodeMs) / 10 : null,
        meanServiceMs: m.done > 0 ? Math.round(m.serviceMs / m.done) : null,
      };
    }
    const total = this.slots.get("total");
    return {
      at: now,
      windows: {
        "5m": windowStats(sum(minutes(5))),
        "1h": windowStats(sum(minutes(60))),
        "1d": windowStats(sum(hours)),
      },
      total: total ? addCounts(emptyCounts(), total) : emptyCounts(),
      models,
    };
  }

  /** Apply `change` to the current minute, the current hour and the total, and write them. */
  private update(model: string, change: (c: StatsCounts, m: ModelCounts) => void): void {
    const now = this.clock();
    const keys = [`m:${now - (now % MINUTE)}`, `h:${now - (now % HOUR)}`, "total"];
    for (const key of keys) {
      let slot = this.slots.get(key);
      if (!slot) {
        slot = emptySlot();
        this.slots.set(key, slot);
        this.prune(now);
      }
      const name =
        model in slot.models || Object.keys(slot.models).length < MAX_MODELS_PER_SLOT
          ? model
          : OTHER_MODEL;
      const m = (slot.models[name] ??= { done: 0, tokens: 0, decodeMs: 0, serviceMs: 0 });
      change(slot, m);
      this.sql.exec(
        `INSERT OR REPLACE INTO region_stats (slot, data) VALUES (?, ?)`,
        key,
        JSON.stringify(slot),
      );
    }
  }

  /** Drop minute slots older than an hour and hour slots older than a day. */
  private prune(now: number): void {
    for (const key of [...this.slots.keys()]) {
      const [kind, start] = key.split(":");
      const age = now - Number(start);
      if ((kind === "m" && age >= HOUR) || (kind === "h" && age >= 24 * HOUR)) {
        this.slots.delete(key);
        this.sql.exec(`DELETE FROM region_stats WHERE slot = ?`, key);
      }
    }
  }
}
