import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * `wrangler dev` on 127.0.0.1 for browser tests: the real coordinator in workerd serving dist/ as
 * static assets, with Durable Object state in a fresh temporary folder. Started in its own process
 * group (wrangler spawns workerd; killing only the parent can leave the port held), refuses a busy
 * port, and is ready when `GET /v1/models` answers 200.
 */
const ROOT = resolve(import.meta.dirname, "../..");

export interface WranglerDev {
  port: number;
  origin: string;
  /** Everything wrangler printed, for failure messages. */
  output(): string;
  /** Set the CPU niceness of wrangler and workerd (best effort; raising priority needs root). */
  renice(niceness: number): boolean;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

async function waitReady(
  child: ChildProcess,
  origin: string,
  log: () => string,
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once("exit", () => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`wrangler dev exited before it was ready:\n${log()}`);
    try {
      const res = await fetch(`${origin}/v1/models`);
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    // Poll interval while the server boots (the readiness event is the HTTP answer itself).
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev was not ready after ${timeoutMs} ms:\n${log()}`);
}

export async function startWranglerDev(
  opts: {
    port?: number;
    vars?: Record<string, string>;
    timeoutMs?: number;
    /** Start at this CPU niceness (e.g. 10 to boot in the background of a running test). */
    nice?: number;
    /** Called once spawned, with the `renice` of the server it will be (usable while it boots). */
    spawned?: (renice: (niceness: number) => boolean) => void;
    /** State folder to start from (e.g. a local R2 bucket filled beforehand); removed at stop. */
    persist?: string;
  } = {},
): Promise<WranglerDev> {
  const port = opts.port ?? (await freePort());
  if (!(await portIsFree(port))) throw new Error(`port ${port} on 127.0.0.1 is busy`);
  const persist = opts.persist ?? mkdtempSync(join(tmpdir(), "tabgrid-wrangler-"));
  // The anonymous tier lets the official client call without a key, as on `npm start`.
  const vars = {
    ALLOW_LOCATION_HEADER: "true",
    ANONYMOUS_TIER: "on",
    ANONYMOUS_RPM: "100000",
    ANONYMOUS_CONCURRENT: "1000",
    // Tests read GET /v1/nodes and /v1/models right after what they change (no isolate cache).
    LISTING_CACHE_MS: "0",
    ...opts.vars,
  };
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persist];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const wrangler = join(ROOT, "node_modules/.bin/wrangler");
  const niced = opts.nice !== undefined && process.platform !== "win32";
  const [cmd, cmdArgs] = niced
    ? ["nice", ["-n", String(opts.nice), wrangler, ...args]]
    : [wrangler, args];
  const child = spawn(cmd, cmdArgs, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_COLOR: "1",
      // wrangler dev's local trace collector records a span for every request, RPC, socket message
      // and SQLite statement in the same workerd (~25 ms of its CPU per 20-token job, measured:
      // docs/performance.md, session 8); Cloudflare runs no such thing. Off unless asked for.
      X_LOCAL_OBSERVABILITY: process.env.X_LOCAL_OBSERVABILITY ?? "false",
    },
  });
  const renice = (niceness: number) =>
    child.pid !== undefined &&
    process.platform !== "win32" &&
    spawnSync("renice", ["-n", String(niceness), "-g", String(child.pid)], { stdio: "ignore" })
      .status === 0;
  opts.spawned?.(renice);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const origin = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // Already gone.
      }
      const killed = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
      ]);
      if (!killed) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
        await exited;
      }
    }
    rmSync(persist, { recursive: true, force: true });
  };

  try {
    await waitReady(child, origin, () => out, opts.timeoutMs ?? 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, origin, output: () => out, renice, stop };
}
