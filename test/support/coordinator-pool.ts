import { createServer, type Server } from "node:http";
import { startWranglerDev, type WranglerDev } from "./wrangler-dev.js";

/**
 * Coordinators for the browser files, handed out by the project's global setup (in vitest's main
 * process) over a small HTTP endpoint on 127.0.0.1. Starting `wrangler dev` takes seconds (more on
 * a busy machine), so the pool keeps one started ahead: while a file runs, the next file's
 * coordinator boots. Every file still gets a fresh coordinator of its own (fresh Durable Object
 * storage), stopped when the file releases it.
 *
 *   POST /claim          body: vars as JSON → { id, port, origin }
 *   GET  /output/<id>    → what that wrangler dev printed
 *   POST /release/<id>   → stops it
 */

/**
 * Coordinator variables for browser tests: short enough that a job a tab failed or dropped fails
 * or moves within a test (production waits 30 s for a replacement tab), long enough that a real
 * tab on a busy 2-core machine is never taken for gone. The status interval stays production's.
 * Answer verification is off (`TRUST=off`, as in the edge project): its audits and canary jobs
 * would land on these tabs at random and change the job counts the pages show; it has its own
 * tests (edge/region/verification.test.ts, the engine's score path in web/).
 */
export const TEST_TIMINGS: Readonly<Record<string, string>> = {
  ACCEPT_MS: "3000",
  LEASE_MS: "5000",
  REDISPATCH_WAIT_MS: "2000",
  TRUST: "off",
};

export interface Claimed {
  id: string;
  port: number;
  origin: string;
}

interface Booting {
  key: string;
  ready: Promise<WranglerDev>;
  /** Back to normal CPU priority (it may still be booting). */
  hurry(): void;
}

const keyOf = (vars: Record<string, string>) =>
  JSON.stringify(Object.entries(vars).sort(([a], [b]) => a.localeCompare(b)));

export class CoordinatorPool {
  private spare: Booting | undefined;
  private readonly claimed = new Map<string, WranglerDev>();
  private nextId = 1;
  private closed = false;

  /**
   * Start the next coordinator now (first: once dist/ is built, since wrangler dev serves it).
   * While a file runs, the next one boots at low CPU priority so that it does not slow the file.
   */
  prime(): void {
    this.spare ??= this.boot(TEST_TIMINGS, this.claimed.size > 0 ? 10 : 0);
  }

  /** A ready coordinator with TEST_TIMINGS and `vars`; the next one starts booting at once. */
  async claim(vars: Record<string, string> = {}): Promise<Claimed> {
    const full = { ...TEST_TIMINGS, ...vars };
    const key = keyOf(full);
    let mine: Booting;
    if (this.spare?.key === key) {
      mine = this.spare;
      this.spare = undefined;
    } else {
      mine = this.boot(full, 0);
    }
    // Serving a file, it runs at normal priority (best effort: raising priority needs root).
    mine.hurry();
    const server = await mine.ready.catch(() => startWranglerDev({ vars: full }));
    if (this.closed) {
      await server.stop();
      throw new Error("the coordinator pool is closed");
    }
    const id = String(this.nextId++);
    this.claimed.set(id, server);
    this.prime();
    return { id, port: server.port, origin: server.origin };
  }

  output(id: string): string {
    return this.claimed.get(id)?.output() ?? "";
  }

  async release(id: string): Promise<void> {
    const server = this.claimed.get(id);
    this.claimed.delete(id);
    await server?.stop();
  }

  private boot(vars: Record<string, string>, nice: number): Booting {
    let renice: (niceness: number) => boolean = () => false;
    const ready = startWranglerDev({
      vars,
      ...(nice ? { nice, spawned: (r: typeof renice) => (renice = r) } : {}),
    });
    // Failures surface to whoever claims it (who then starts another); never unhandled.
    ready.catch(() => {});
    return { key: keyOf(vars), ready, hurry: () => nice && renice(0) };
  }

  async close(): Promise<void> {
    this.closed = true;
    const spare = this.spare;
    this.spare = undefined;
    await Promise.all([
      ...[...this.claimed.keys()].map((id) => this.release(id)),
      spare?.ready.then((s) => s.stop()).catch(() => {}),
    ]);
  }

  /** Serve claim/output/release on 127.0.0.1; resolves with the base URL. */
  async listen(): Promise<{ url: string; close(): Promise<void> }> {
    const http: Server = createServer((req, res) => {
      const [, verb, id = ""] = (req.url ?? "").split("/");
      const answer = (status: number, body: string, type = "application/json") =>
        res.writeHead(status, { "content-type": type }).end(body);
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        const work = async () => {
          if (req.method === "POST" && verb === "claim") {
            const vars = body ? (JSON.parse(body) as Record<string, string>) : {};
            return answer(200, JSON.stringify(await this.claim(vars)));
          }
          if (req.method === "GET" && verb === "output")
            return answer(200, this.output(id), "text/plain");
          if (req.method === "POST" && verb === "release") {
            await this.release(id);
            return answer(200, "{}");
          }
          answer(404, "{}");
        };
        work().catch((err: unknown) =>
          answer(500, err instanceof Error ? err.message : String(err), "text/plain"),
        );
      });
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const addr = http.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((r) => http.close(() => r())),
    };
  }
}
