import type { SchedulerOptions } from "../../shared/scheduling/scheduler-options.js";

/** Minimal `--name value` / `--name=value` flag reading for the benchmark scripts. */
export function readFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--"))
      flags.set(arg.slice(2), argv[++i]!);
    else flags.set(arg.slice(2), "true");
  }
  return flags;
}

export function numberList(flags: Map<string, string>, name: string, fallback: number[]): number[] {
  const raw = flags.get(name);
  if (!raw) return fallback;
  const list = raw.split(",").map((s) => Number(s.replace(/_/g, "")));
  if (list.some((n) => !Number.isFinite(n) || n <= 0)) throw new Error(`--${name}: ${raw}`);
  return list;
}

export function numberFlag(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/_/g, ""));
  if (!Number.isFinite(n)) throw new Error(`--${name}: ${raw}`);
  return n;
}

/** Percentile by nearest rank over an unsorted copy. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  console.log(line(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const row of rows) console.log(line(row));
}

/** Scheduler options set by a number, by flag (bench:geo's parts and bench:hedging alike). */
const SCHEDULER_NUMBERS = {
  "idle-preference": "idlePreference",
  "max-queued": "maxQueued",
  "run-length-quantile": "runLengthQuantile",
  "spare-fast-from": "spareFastFromPrefill",
  "spare-below-tokens": "spareBelowTokens",
  "spare-within-ms": "spareWithinMs",
  "spare-idle-share": "spareIdleShare",
  "spare-long-share": "spareLongShare",
  "spare-mix": "spareMixQuantile",
  "spare-mix-within-ms": "spareMixWithinMs",
  "hold-weight": "holdWeight",
  "miss-weight": "missWeight",
  "hold-ms": "holdMs",
} as const;
/** Scheduler options switched by 0 or 1, by flag. */
const SCHEDULER_SWITCHES = {
  "run-lengths": "learnRunLengths",
  "spare-fast": "spareFast",
  "fleet-prior": "fleetPrior",
} as const;

/**
 * The Scheduler's options from bench flags, each overriding its default only when given: one flag
 * name per option, whichever benchmark or part runs the scheduler.
 */
export function schedulerFlags(flags: Map<string, string>): Omit<SchedulerOptions, "staleAfterMs"> {
  const options: Record<string, number | boolean> = {};
  for (const [flag, option] of Object.entries(SCHEDULER_NUMBERS)) {
    if (flags.has(flag)) options[option] = numberFlag(flags, flag, Number.NaN);
  }
  for (const [flag, option] of Object.entries(SCHEDULER_SWITCHES)) {
    if (flags.has(flag)) options[option] = numberFlag(flags, flag, 1) === 1;
  }
  return options;
}
