import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU time (user + system) of a process and all its descendants, from /proc (Linux): how much the
 * coordinator (wrangler dev and the workerd it runs) or the raw relay spent during a phase.
 */
const TICKS_PER_SECOND = 100;

interface Stat {
  pid: number;
  ppid: number;
  ticks: number;
  /** The command name (e.g. `workerd`, `node`). */
  comm: string;
}

function readStats(): Stat[] {
  const out: Stat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const raw = readFileSync(`/proc/${name}/stat`, "utf8");
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const f = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
      const comm = raw.slice(raw.indexOf("(") + 1, raw.lastIndexOf(")"));
      out.push({
        pid: Number(name),
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]),
        comm,
      });
    } catch {
      // The process ended while we listed it.
    }
  }
  return out;
}

/** CPU milliseconds used so far by `root` and its descendants. */
export function treeCpuMs(root: number): number {
  return [...treeCpuByCommand(root).values()].reduce((a, b) => a + b, 0);
}

/**
 * CPU milliseconds used so far by `root` and its descendants, by command name: how much of the
 * coordinator's CPU is workerd (the Worker and its objects, and wrangler's proxy worker) and how
 * much wrangler's Node process.
 */
export function treeCpuByCommand(root: number): Map<string, number> {
  const stats = readStats();
  const children = new Map<number, Stat[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const ms = new Map<string, number>();
  const stack = stats.filter((s) => s.pid === root);
  while (stack.length) {
    const s = stack.pop()!;
    ms.set(s.comm, (ms.get(s.comm) ?? 0) + (s.ticks * 1000) / TICKS_PER_SECOND);
    stack.push(...(children.get(s.pid) ?? []));
  }
  return ms;
}

/** The child processes of this process whose command line mentions `needle` (e.g. wrangler). */
export function childPids(needle: string): number[] {
  return readStats()
    .filter((s) => s.ppid === process.pid)
    .filter((s) => {
      try {
        return readFileSync(`/proc/${s.pid}/cmdline`, "utf8").includes(needle);
      } catch {
        return false;
      }
    })
    .map((s) => s.pid);
}
