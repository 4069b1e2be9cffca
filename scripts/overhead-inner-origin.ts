import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * The address (and process) of the user Worker's own workerd under `wrangler dev`, behind wrangler's local
 * proxy. `wrangler dev` answers on its public port with a ProxyWorker (a Durable Object in a
 * workerd of its own) that forwards every request and WebSocket over loopback HTTP to a second
 * workerd, which runs Miniflare's entry worker and then the coordinator. Production has no such
 * proxy, so bench:overhead measures the same jobs through both doors to tell wrangler dev's share
 * of the added time from the product's. Linux only (/proc); null when not found.
 *
 * Found by listing the loopback ports the workerd processes under `rootPid` listen on (their
 * sockets' inodes in /proc/<pid>/fd against /proc/net/tcp) and asking each, except the public
 * one, for GET /v1/models: the coordinator's own answer (200 with a model list) names it.
 */
export async function innerWorkerOrigin(
  rootPid: number,
  publicPort: number,
): Promise<{ origin: string; pid: number } | null> {
  const pids = descendants(rootPid).filter((pid) => commandOf(pid) === "workerd");
  const inodes = new Map<string, number>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.set(m[1]!, pid);
      } catch {
        // The descriptor closed while we listed it.
      }
    }
  }
  const ports = new Map<number, number>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN; field 9 is the inode.
    if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9]!)) continue;
    const port = parseInt(f[1]!.split(":")[1]!, 16);
    if (port !== publicPort) ports.set(port, inodes.get(f[9]!)!);
  }
  for (const [port, pid] of ports) {
    const origin = `http://127.0.0.1:${port}`;
    try {
      const res = await fetch(`${origin}/v1/models`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { object?: string };
      if (res.status === 200 && body.object === "list") return { origin, pid };
    } catch {
      // Not an HTTP port of the coordinator (the inspector, Miniflare's loopback…).
    }
  }
  return null;
}

function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const raw = readFileSync(`/proc/${name}/stat`, "utf8");
      parent.set(Number(name), Number(raw.slice(raw.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // The process ended while we listed it.
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const [child, ppid] of parent) if (ppid === pid) stack.push(child);
  }
  return out;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}
