/**
 * bench:scale — does relaying tokens grow with the number of Region shards? In one run on
 * loopback: for 1, 2, 4 and 8 shards per location hint (REGION_SHARDS; a fresh `wrangler dev` for
 * each, splitting turned off), the same offered load — S streaming clients, each answer T tokens,
 * one token per frame every F ms — through the coordinator to Node `ws` tabs speaking the
 * contributor protocol (scripts/overhead/bench-tab.ts), each tab connecting from its own address
 * (cf-connecting-ip) so the tabs spread over the shards by hash; and the same load through a raw
 * Node `ws` relay in its own process (the baseline). Then the per-frame CPU cost of the coordinator
 * for short and long answers (100 and 4,000 tokens), against the raw relay's.
 * A benchmark, not a test: it prints what it measured and exits 0 unless the harness broke.
 *
 *   npm run bench:scale -- [--shards 1,2,4,8] [--streams 20] [--tokens 100] [--frame-ms 50]
 *        [--rounds 1] [--lengths 100,4000] [--cost-streams 2] [--cost-frames 2000]
 *        [--cost-frame-ms 2] [--quick]
 */
import { cpus, loadavg } from "node:os";
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { WranglerDev } from "../test/support/wrangler-dev.js";
import { numberFlag, numberList, percentile, printTable, readFlags } from "./sim/flags.js";
import { CoordinatorTab, type TokenPlan } from "./overhead/bench-tab.js";
import { coordinatorAnswer, relayAnswer, type Answer } from "./overhead/clients.js";
import { framesOf, okCount, runPool, startRawRelay } from "./overhead/job-pool.js";
import { childPids, treeCpuMs } from "./overhead/proc-cpu.js";

const flags = readFlags(process.argv.slice(2));
const quick = flags.has("quick");
const p = {
  shards: numberList(flags, "shards", [1, 2, 4, 8]),
  // 20 tokens/s per stream (one frame every 50 ms) is a fast WebGPU tab's decode speed.
  streams: numberFlag(flags, "streams", quick ? 10 : 20),
  tokens: numberFlag(flags, "tokens", 100),
  frameMs: numberFlag(flags, "frame-ms", 50),
  rounds: numberFlag(flags, "rounds", 1),
  lengths: numberList(flags, "lengths", [100, 4000]),
  costStreams: numberFlag(flags, "cost-streams", 2),
  costFrames: numberFlag(flags, "cost-frames", quick ? 1000 : 2000),
  costFrameMs: numberFlag(flags, "cost-frame-ms", 2),
  timeoutMs: numberFlag(flags, "timeout-ms", 60_000),
};
if (p.streams > 200 || p.tokens > 4000 || Math.max(...p.shards) > 64 || p.rounds > 5) {
  throw new Error("bounded benchmark: at most 200 streams, 4000 tokens, 64 shards, 5 rounds");
}
// The whole run is bounded in time whatever happens to the coordinator.
const deadline = setTimeout(() => {
  console.error("bench:scale: over 20 minutes, giving up");
  process.exit(2);
}, 20 * 60_000);
deadline.unref();

const protocol = Number(
  /PROTOCOL_VERSION = (\d+)/.exec(readFileSync("shared/protocol/version.ts", "utf8"))![1],
);
const plan: TokenPlan = { tokens: p.tokens, frameMs: p.frameMs };
const offered = (p.streams * 1000) / p.frameMs;
console.log(
  `bench:scale ${new Date().toISOString()} on ${cpus()[0]?.model ?? "?"} ×${cpus().length}, ` +
    `Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
);
console.log(
  `offered load: ${p.streams} streams × ${p.tokens} tokens, one token per frame every ` +
    `${p.frameMs} ms (${offered.toFixed(0)} frames/s), ${p.rounds} round(s); tab protocol ${protocol}`,
);
mkdirSync("dist", { recursive: true });

let nextIndex = 0;
const rows: string[][] = [];
const costRows: string[][] = [];
const notes: string[] = [];
const costs: Array<{ length: number; us: number }> = [];

for (const shards of p.shards) {
  const server = await startCoordinator({
    vars: {
      REGION_SHARDS: String(shards),
      // Splitting off: each row measures a fixed number of shards.
      SHARD_SPLIT_STREAMS: "1000000",
      SHARD_SPLIT_TABS: "1000000",
      MAX_NODES_PER_IP: "50",
      // Simulated tabs all connect from 127.0.0.1: no reconnect limit for the address here.
      TAB_CONNECTS_PER_MIN: "1000000",
      TAB_FRAMES_PER_S: "5000",
      TAB_FRAME_BURST: "10000",
      ANONYMOUS_TIER: "on",
      ANONYMOUS_RPM: "10000000",
      ANONYMOUS_CONCURRENT: "1000000",
      TRUST: "off",
    },
    timeoutMs: 90_000,
  });
  const pid = childPids("wrangler")[0];
  const tabs: CoordinatorTab[] = [];
  try {
    const wsUrl = `${server.origin.replace(/^http/, "ws")}/v1/nodes/connect`;
    for (let i = 0; i < p.streams; i++) {
      const ip = `10.0.${i >> 8}.${i & 255}`;
      tabs.push(new CoordinatorTab(wsUrl, protocol, i, { "cf-connecting-ip": ip }));
    }
    for (let i = 0; i < tabs.length; i += 10)
      await Promise.all(tabs.slice(i, i + 10).map((t) => t.connect()));
    const spread = await tabsPerShard(server, p.streams);
    await runJobs(p.streams, p.streams, { tokens: 5, frameMs: 5 }, (i, pl) =>
      coordinatorAnswer(server.origin, i, pl, p.timeoutMs),
    );
    const before = pid === undefined ? NaN : treeCpuMs(pid);
    const answers = await runJobs(p.streams, p.streams * p.rounds, plan, (i, pl) =>
      coordinatorAnswer(server.origin, i, pl, p.timeoutMs),
    );
    const cpuMs = pid === undefined ? NaN : treeCpuMs(pid) - before;
    rows.push(row(`${shards} shard${shards > 1 ? "s" : ""}`, answers, cpuMs, spread));
    if (shards === p.shards[0]) {
      for (const length of p.lengths) {
        const lp: TokenPlan = { tokens: length, frameMs: p.costFrameMs };
        const jobs = p.costStreams * Math.max(1, Math.round(p.costFrames / length));
        const c = await cpuPerFrame(pid, jobs, lp, (i, pl) =>
          coordinatorAnswer(server.origin, i, pl, p.timeoutMs),
        );
        costs.push({ length, us: c.us });
        costRows.push([
          `${length}-token answers (${shards} shard)`,
          `${c.us.toFixed(0)}`,
          `${(c.us / costs[0]!.us).toFixed(2)}×`,
          c.ok,
        ]);
      }
    }
  } finally {
    for (const t of tabs) t.close();
    await server.stop();
  }
}

// ---- the raw relay baseline, same load ---------------------------------------------------------
const relay = await startRawRelay();
try {
  await runJobs(p.streams, p.streams, { tokens: 5, frameMs: 5 }, viaRelay);
  const before = treeCpuMs(relay.pid);
  const answers = await runJobs(p.streams, p.streams * p.rounds, plan, viaRelay);
  rows.push(row("raw ws relay (baseline)", answers, treeCpuMs(relay.pid) - before, "—"));
  for (const length of p.lengths) {
    const lp: TokenPlan = { tokens: length, frameMs: p.costFrameMs };
    const jobs = p.costStreams * Math.max(1, Math.round(p.costFrames / length));
    const c = await cpuPerFrame(relay.pid, jobs, lp, viaRelay);
    costRows.push([`${length}-token answers (raw ws relay)`, `${c.us.toFixed(0)}`, "", c.ok]);
  }
} finally {
  relay.stop();
}

const rawFps = Number(rows.at(-1)![1]);
for (const r of rows) r.splice(2, 0, rawFps > 0 ? `${(Number(r[1]) / rawFps).toFixed(2)}×` : "n/a");
console.log("");
printTable(
  [
    "configuration",
    "frames/s",
    "÷ raw relay",
    "× ideal time",
    "TTFT p50",
    "TTFT p95",
    "CPU µs/frame",
    "tabs per shard",
    "jobs ok",
  ],
  rows,
);
console.log("");
printTable(["per-frame cost", "CPU µs/frame", "÷ first row", "jobs ok"], costRows);
console.log(
  "\nframes/s = tokens the clients received ÷ wall time of the phase; ideal = tokens × frame " +
    "interval; TTFT = request sent → first token at the client; CPU = user+system time of " +
    "wrangler dev + workerd (or the relay process) during the phase ÷ frames. All Region shards " +
    "of a local `wrangler dev` run in one workerd process on this machine.",
);
for (const n of notes) console.log(n);

// ---- helpers ---------------------------------------------------------------------------------

type Path = (index: number, plan: TokenPlan) => Promise<Answer>;

function row(name: string, answers: Answer[], cpuMs: number, spread: string): string[] {
  const ok = answers.filter((a) => a.ok);
  const frames = framesOf(answers);
  const wall = Math.max(...answers.map((a) => a.endAt)) - Math.min(...answers.map((a) => a.sentAt));
  const ideal = p.rounds * plan.tokens * plan.frameMs;
  const ttft = ok.map((a) => a.tokenAt[0]! - a.sentAt);
  const failed = answers.find((a) => !a.ok);
  if (failed) notes.push(`${name}: a job failed: ${failed.error}`);
  return [
    name,
    ((frames * 1000) / wall).toFixed(0),
    `${(wall / ideal).toFixed(2)}×`,
    `${percentile(ttft, 50).toFixed(1)} ms`,
    `${percentile(ttft, 95).toFixed(1)} ms`,
    frames ? ((cpuMs * 1000) / frames).toFixed(0) : "n/a",
    spread,
    `${ok.length}/${answers.length}`,
  ];
}

/** How the tabs spread over shards, from the status API's per-object rows (shard names). */
async function tabsPerShard(server: WranglerDev, expected: number): Promise<string> {
  const end = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${server.origin}/v1/status/regions`);
    const body = (await res.json()) as { data: Array<{ region: string; tabs: number }> };
    const counts = body.data.filter((r) => r.tabs > 0);
    const total = counts.reduce((n, r) => n + r.tabs, 0);
    if (total >= expected || Date.now() > end)
      return counts
        .sort((a, b) => a.region.localeCompare(b.region))
        .map((r) => r.tabs)
        .join("/");
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Through the raw relay (scripts/overhead/clients.ts relayAnswer). */
function viaRelay(index: number, pl: TokenPlan): Promise<Answer> {
  return relayAnswer(relay.url, index, pl, p.timeoutMs);
}

/** `total` jobs, `concurrent` at a time (a new one starts as one ends). */
function runJobs(concurrent: number, total: number, pl: TokenPlan, path: Path) {
  return runPool(concurrent, total, () => path(nextIndex++, pl));
}

async function cpuPerFrame(pid: number | undefined, jobs: number, pl: TokenPlan, path: Path) {
  if (pid === undefined) throw new Error("no process to measure");
  const before = treeCpuMs(pid);
  const answers = await runJobs(p.costStreams, jobs, pl, path);
  const cpuMs = treeCpuMs(pid) - before;
  const frames = framesOf(answers);
  return { us: frames ? (cpuMs * 1000) / frames : NaN, ok: okCount(answers) };
}

/** `wrangler dev` of this checkout, loaded from its own path (as bench:overhead does). */
async function startCoordinator(
  options: Parameters<typeof import("../test/support/wrangler-dev.js").startWranglerDev>[0],
): Promise<WranglerDev> {
  const url = pathToFileURL(resolve("test/support/wrangler-dev.ts")).href;
  const mod = (await import(url)) as typeof import("../test/support/wrangler-dev.js");
  // Other servers on this shared machine can hold a port wrangler picks for itself: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await mod.startWranglerDev(options);
    } catch (e) {
      if (attempt >= 3) throw e;
      console.log(`  (wrangler dev did not start, attempt ${attempt}: ${String(e).slice(0, 120)})`);
    }
  }
}
