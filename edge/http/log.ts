import { isRoutine, RoutineCounts } from "./routine-log.js";

const routine = new RoutineCounts();

/**
 * Structured one-line JSON logs, so `wrangler tail` and local output can be grepped by requestId.
 * Routine per-job info lines are counted and summarised instead (routine-log.ts).
 */
export function log(
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields: Record<string, unknown> = {},
): void {
  if (level === "info" && isRoutine(msg, fields)) routine.count(msg);
  else write(level, msg, fields);
  const summary = routine.due();
  if (summary) write("info", "routine jobs", summary);
}

function write(level: "debug" | "info" | "warn" | "error", msg: string, fields: object): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
