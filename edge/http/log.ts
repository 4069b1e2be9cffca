import { RoutineCounts } from "./routine-log.js";

const routine = new RoutineCounts();

/**
 * Structured one-line JSON logs, so `wrangler tail` and local output can be grepped by requestId.
 * Routine per-job info lines go to `logRoutine` instead.
 */
export function log(
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields: Record<string, unknown> = {},
): void {
  write(level, msg, fields);
  summarise();
}

/**
 * A routine per-job info line (a job's first placement): counted, and printed only as part of a
 * `routine jobs` summary at most every SUMMARY_EVERY_MS (routine-log.ts).
 */
export function logRoutine(msg: string): void {
  routine.count(msg);
  summarise();
}

function summarise(): void {
  const summary = routine.due();
  if (summary) write("info", "routine jobs", summary);
}

function write(level: "debug" | "info" | "warn" | "error", msg: string, fields: object): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
