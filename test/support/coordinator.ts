import { chromium, type Browser } from "playwright-core";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import type { EngineWorker } from "./build-page.js";
import { TEST_TIMINGS } from "./coordinator-pool.js";
import { launchWebRtcChromium } from "./embed-harness.js";
import { startWranglerDev } from "./wrangler-dev.js";

export { TEST_TIMINGS };

/**
 * The per-file half of the browser test harness (the other half is test/support/browser-setup.ts,
 * the project's global setup). `useCoordinator()` registers hooks that claim this file's own
 * coordinator (`wrangler dev` with TEST_TIMINGS, booted ahead by the pool) and connect to the
 * shared Chromium, both at once; after the file it closes the browser contexts the file opened
 * and releases the coordinator, printing the tail of its log if a test failed.
 */

export interface CoordinatorOptions {
  /**
   * Coordinator variables on top of the anonymous tier and TEST_TIMINGS; a function is called
   * when the coordinator is claimed (after the file's earlier beforeAll hooks, e.g. once a local
   * model host knows its port).
   */
  vars?: Record<string, string> | (() => Record<string, string>);
  /** Chromium with the WebRTC switches (the shared one when it has them, else one of its own). */
  webRtc?: boolean;
  /** How much of wrangler dev's output to print after a failed test (characters). */
  logTail?: number;
}

/** This file's `wrangler dev`. */
export interface TestServer {
  port: number;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** What wrangler dev printed so far. */
  output(): Promise<string>;
  stop(): Promise<void>;
}

export interface Coordinator {
  readonly server: TestServer;
  /** The shared Chromium, connected for this file: contexts it opens close after the file. */
  readonly browser: Browser;
  /** The coordinator as pages must load it: http://localhost:<port> (a secure context). */
  readonly coordinator: string;
  /** A test engine Worker bundle, to route in place of assets/engine-worker.js. */
  engine(name?: EngineWorker): string;
}

export function useCoordinator(opts: CoordinatorOptions = {}): Coordinator {
  let server: TestServer | undefined;
  let browser: Browser | undefined;
  let failed = false;

  beforeAll(async () => {
    const t0 = performance.now();
    const lap = <T>(what: string, p: Promise<T>) =>
      process.env.TABGRID_HARNESS_TIMING
        ? p.then((v) => (console.log(`${what}: ${Math.round(performance.now() - t0)} ms`), v))
        : p;
    // Both are awaited, so neither is left running if the other fails.
    const [s, b] = await Promise.allSettled([
      lap(
        "coordinator",
        claimServer(typeof opts.vars === "function" ? opts.vars() : (opts.vars ?? {})),
      ),
      lap("browser", connectBrowser(opts.webRtc ?? false)),
    ]);
    if (s.status === "fulfilled") server = s.value;
    if (b.status === "fulfilled") browser = b.value;
    if (s.status === "rejected") throw s.reason;
    if (b.status === "rejected") throw b.reason;
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") failed = true;
  });

  afterAll(async () => {
    await browser?.close();
    if (failed && server) {
      // After a failure, show what the coordinator logged (request ids, errors).
      const tail = (await server.output()).slice(-(opts.logTail ?? 6000));
      console.error(`wrangler dev output (tail):\n${tail}`);
    }
    await server?.stop();
  });

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready: use it in beforeAll or a test`);
    return value;
  };
  return {
    get server() {
      return need(server, "wrangler dev");
    },
    get browser() {
      return need(browser, "the browser");
    },
    get coordinator() {
      return `http://localhost:${need(server, "wrangler dev").port}`;
    },
    engine(name: EngineWorker = "deterministic") {
      const bundle = inject("engineBundles")?.[name];
      if (!bundle) throw new Error(`no '${name}' engine bundle: run with the browser project`);
      return bundle;
    },
  };
}

/** From the global setup's pool; without one (another runner), started here. */
async function claimServer(vars: Record<string, string>): Promise<TestServer> {
  const pool = inject("coordinatorPool");
  if (!pool) {
    const own = await startWranglerDev({ vars: { ...TEST_TIMINGS, ...vars } });
    return { ...own, output: async () => own.output() };
  }
  const res = await fetch(`${pool}/claim`, { method: "POST", body: JSON.stringify(vars) });
  if (!res.ok) throw new Error(`no coordinator from the pool: ${await res.text()}`);
  const { id, port, origin } = (await res.json()) as { id: string; port: number; origin: string };
  return {
    port,
    origin,
    output: async () => (await fetch(`${pool}/output/${id}`)).text(),
    stop: async () => {
      await fetch(`${pool}/release/${id}`, { method: "POST" });
    },
  };
}

async function connectBrowser(webRtc: boolean): Promise<Browser> {
  const endpoint = inject("chromiumWsEndpoint");
  if (!endpoint) throw new Error("no shared Chromium: run with the browser project's global setup");
  if (webRtc && !inject("chromiumWebRtc")) return launchWebRtcChromium();
  return chromium.connect(endpoint);
}
