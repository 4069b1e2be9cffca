import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadavg } from "node:os";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { WranglerDev } from "../../test/support/wrangler-dev.js";
import { Observations } from "./observations.js";
import { jobPrompt, planJob, type JobPlan } from "./plan.js";
import { SimTab } from "./sim-tab.js";
import { streamChat, type ClientResult } from "./stream-client.js";

export const MODEL = "churn-bench-model";

export interface ChurnParams {
  seed: number;
  tabs: number;
  /** Requests per second, sent open-loop (on schedule, whatever the answers do). */
  rps: number;
  durationS: number;
  tokensPerJob: number;
  tokensPerSecond: number;
  frameMs: number;
  dropRate: number;
  statusIntervalMs: number;
  acceptMs: number;
  leaseMs: number;
  redispatchWaitMs: number;
  rejoinMs: number;
  /** A request still open this long after it was sent is counted as a timeout. */
  requestTimeoutMs: number;
  /** Where to write the coordinator's output (wrangler dev's log), if anywhere. */
  logDir?: string;
  /**
   * The checkout whose coordinator runs (default: this one). wrangler dev reloads the Worker when
   * a source file changes, which drops every socket and stream: to measure while files are being
   * edited, point this at an exported copy of a commit.
   */
  root: string;
}

export interface JobRecord {
  plan: JobPlan;
  client: ClientResult;
}

export interface RunResult {
  maxAttempts: number;
  jobs: JobRecord[];
  obs: Observations;
  tabConnections: number;
  wallMs: number;
  /** Coordinator log lines counted by message, for the investigation notes. */
  logCounts: Map<string, number>;
  /** 1-minute load average of the machine when the load started and ended. */
  loadAvg: [number, number];
  /** Event-loop delay of this process (tabs + clients) during the load, p99 and max, ms. */
  loopDelayMs: [number, number];
}

/**
 * `wrangler dev` from test/support, loaded at run time from its own path (Node strips its types)
 * so its `import.meta.dirname` still finds the repository, which a bundled copy would not.
 */
async function startCoordinator(root: string, vars: Record<string, string>): Promise<WranglerDev> {
  const url = pathToFileURL(resolve(root, "test/support/wrangler-dev.ts")).href;
  const mod = (await import(url)) as typeof import("../../test/support/wrangler-dev.js");
  return mod.startWranglerDev({ vars, timeoutMs: 60_000 });
}

function countLogs(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of output.split("\n")) {
    const at = line.indexOf('{"level"');
    if (at < 0) continue;
    try {
      const entry = JSON.parse(line.slice(at)) as { level: string; msg: string };
      const key = `${entry.level}: ${entry.msg}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // Not one of the coordinator's JSON lines.
    }
  }
  return counts;
}

/** One run against a fresh coordinator: tabs join, clients send for `durationS`, all drain. */
export async function runChurn(p: ChurnParams, maxAttempts: number): Promise<RunResult> {
  const tokensPerFrame = Math.max(1, Math.round((p.tokensPerSecond * p.frameMs) / 1000));
  const planParams = {
    seed: p.seed,
    tokensPerJob: p.tokensPerJob,
    tokensPerFrame,
    dropRate: p.dropRate,
  };
  const server = await startCoordinator(p.root, {
    STATUS_INTERVAL_MS: String(p.statusIntervalMs),
    ACCEPT_MS: String(p.acceptMs),
    LEASE_MS: String(p.leaseMs),
    REDISPATCH_WAIT_MS: String(p.redispatchWaitMs),
    MAX_ATTEMPTS: String(maxAttempts),
    MAX_NODES_PER_IP: String(p.tabs * 4),
    // Simulated tabs all connect from 127.0.0.1: no reconnect limit for the address here.
    TAB_CONNECTS_PER_MIN: "1000000",
    ANONYMOUS_TIER: "on",
    ANONYMOUS_RPM: "10000000",
    ANONYMOUS_CONCURRENT: "1000000",
  });
  const obs = new Observations();
  const tabs: SimTab[] = [];
  try {
    const wsUrl = `${server.origin.replace(/^http/, "ws")}/v1/nodes/connect`;
    for (let i = 0; i < p.tabs; i++) {
      tabs.push(
        new SimTab(
          i,
          {
            wsUrl,
            model: MODEL,
            plan: { tokensPerJob: p.tokensPerJob, tokensPerFrame, dropRate: p.dropRate },
            frameMs: p.frameMs,
            rejoinMs: p.rejoinMs,
            silentMaxMs: 10 * p.statusIntervalMs,
          },
          obs,
        ),
      );
    }
    // Join in small batches: a real fleet does not connect in one instant either.
    for (let i = 0; i < tabs.length; i += 10) {
      await Promise.all(tabs.slice(i, i + 10).map((t) => t.start()));
    }
    const loadStart = loadavg()[0]!;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    const total = Math.round(p.rps * p.durationS);
    const pending: Array<Promise<JobRecord>> = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / p.rps;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const plan = planJob(planParams, i);
      pending.push(
        streamChat(
          server.origin,
          i,
          {
            model: MODEL,
            messages: [{ role: "user", content: jobPrompt(p.seed, i) }],
            max_tokens: p.tokensPerJob,
          },
          p.requestTimeoutMs,
        ).then((client) => ({ plan, client })),
      );
    }
    const jobs = await Promise.all(pending);
    const wallMs = performance.now() - t0;
    loop.disable();
    if (p.logDir) {
      const dropped = jobs
        .map((j) => ({ ...j, trace: j.client.jobId ? obs.get(j.client.jobId) : undefined }))
        .filter((j) => j.trace?.drop)
        .map(({ plan, client, trace }) => ({
          index: plan.index,
          jobId: client.jobId,
          outcome: client.outcome,
          error: client.error,
          correct: client.text === plan.text,
          startedAt: client.startedAt,
          endedAt: client.endedAt,
          trace,
        }));
      writeFileSync(
        join(p.logDir, `drops-attempts${maxAttempts}.json`),
        JSON.stringify(dropped, null, 1),
      );
    }
    return {
      maxAttempts,
      jobs,
      obs,
      tabConnections: tabs.reduce((n, t) => n + t.connections, 0),
      wallMs,
      logCounts: countLogs(server.output()),
      loadAvg: [loadStart, loadavg()[0]!],
      loopDelayMs: [loop.percentile(99) / 1e6, loop.max / 1e6],
    };
  } finally {
    for (const t of tabs) t.stop();
    if (p.logDir) {
      writeFileSync(join(p.logDir, `coordinator-attempts${maxAttempts}.log`), server.output());
    }
    await server.stop();
  }
}
