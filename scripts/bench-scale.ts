/**
 * bench:scale — does relaying tokens grow with the number of Region shards? In one run on
 * loopback: for 1, 2, 4 and 8 shards per location hint (REGION_SHARDS; a fresh `wrangler dev` for
 * each, splitting turned off), the same offered load — S streaming clients, each answer T tokens,
 * one token per frame every F ms — through the coordinator to Node `ws` tabs speaking the
 * contributor protocol (scripts/overhead/bench-tab.ts), each tab connecting from its own address
 * (cf-connecting-ip) so the tabs spread over the shards by hash; and the same load through a raw
 * Node `ws` relay in its own process (the baseline). Then the per-frame CPU cost of the coordinator
 * for short and long answers (100 and 4,000 tokens), against the raw relay's. And, after each
 * measured round, the open path alone under the same burst: S one-token requests at once, with
 * the coordinator's CPU per request — the time to first token of the measured round is mostly
 * S × that CPU, because every request's steps share one thread here (docs/scale.md, "Why every
 * stream got its first token late").
 * A benchmark, not a test: it prints what it measured and exits 0 unless the harness broke.
 *
 *   npm run bench:scale -- [--shards 1,2,4,8] [--streams 20] [--tokens 100] [--frame-ms 50]
 *        [--rounds 1] [--lengths 100,4000] [--cost-streams 2] [--cost-frames 2000]
 *        [--cost-frame-ms 2] [--quick] [--baseline DIR] [--repeat 1]
 *
 * `--baseline DIR` also runs the coordinator of another checkout (e.g. the base commit exported
 * with `git archive`, node_modules linked) at the first shard count, with its cost phases, in the
 * same run and alternating with this checkout's (`--repeat N` pairs, baseline first), and prints
 * this checkout's figures as a ratio of the baseline's.
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
import { describeSource } from "./overhead/source-label.js";

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
  baseline: flags.get("baseline"),
  repeat: numberFlag(flags, "repeat", 1),
};
if (
  p.streams > 200 ||
  p.tokens > 4000 ||
  Math.max(...p.shards) > 64 ||
  p.rounds > 5 ||
  p.repeat > 5
) {
  throw new Error(
    "bounded benchmark: at most 200 streams, 4000 tokens, 64 shards, 5 rounds, 5 repeats",
  );
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
const burstRows: string[][] = [];
const notes: string[] = [];
const costs: Array<{ length: number; us: number }> = [];

/** What one coordinator measured: its table row, and its cost rows (when asked). */
interface Measured {
  row: string[];
  /** The open-path burst: S one-token requests at once (see `burst`). */
  burst: string[];
  costs: Array<{ length: number; us: number; ok: string; perChunk: string }>;
}

const here = resolve(".");
const baselineRoot = p.baseline ? resolve(p.baseline) : null;
if (baselineRoot) {
  console.log(`baseline coordinator: ${baselineRoot} (${describeSource(baselineRoot)})`);
  console.log(`this coordinator: ${here} (${describeSource(here)})`);
}
const pairs: Array<{ base: Measured; mine: Measured }> = [];
for (const [k, shards] of p.shards.entries()) {
  if (k === 0 && baselineRoot) {
    for (let r = 0; r < p.repeat; r++) {
      const base = await measure(baselineRoot, shards, `${shards} shard, baseline`, true);
      const mine = await measure(here, shards, `${shards} shard`, true);
      pairs.push({ base, mine });
      for (const m of [base, mine]) {
        rows.push(m.row);
        for (const c of m.costs)
          costRows.push([
            `${c.length}-token answers (${m.row[0]})`,
            `${c.us.toFixed(0)}`,
            "",
            c.perChunk,
            c.ok,
          ]);
      }
    }
    continue;
  }
  const m = await measure(here, shards, `${shards} shard${shards > 1 ? "s" : ""}`, k === 0);
  rows.push(m.row);
  for (const c of m.costs) {
    costs.push({ length: c.length, us: c.us });
    costRows.push([
      `${c.length}-token answers (${shards} shard)`,
      `${c.us.toFixed(0)}`,
      `${(c.us / costs[0]!.us).toFixed(2)}×`,
      c.perChunk,
      c.ok,
    ]);
  }
}

async function measure(
  root: string,
  shards: number,
  name: string,
  withCost: boolean,
): Promise<Measured> {
  const out: Measured = { row: [], burst: [], costs: [] };
  const server = await startCoordinator(root, {
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
    out.row = row(name, answers, cpuMs, spread);
    out.burst = await burst(name, pid, (i, pl) =>
      coordinatorAnswer(server.origin, i, pl, p.timeoutMs),
    );
    burstRows.push(out.burst);
    if (withCost) {
      for (const length of p.lengths) {
        const lp: TokenPlan = { tokens: length, frameMs: p.costFrameMs };
        const jobs = p.costStreams * Math.max(1, Math.round(p.costFrames / length));
        const c = await cpuPerFrame(pid, jobs, lp, (i, pl) =>
          coordinatorAnswer(server.origin, i, pl, p.timeoutMs),
        );
        out.costs.push({ length, ...c });
      }
    }
  } finally {
    for (const t of tabs) t.close();
    await server.stop();
  }
  return out;
}

// ---- the raw relay baseline, same load ---------------------------------------------------------
const relay = await startRawRelay();
try {
  await runJobs(p.streams, p.streams, { tokens: 5, frameMs: 5 }, viaRelay);
  const before = treeCpuMs(relay.pid);
  const answers = await runJobs(p.streams, p.streams * p.rounds, plan, viaRelay);
  rows.push(row("raw ws relay (baseline)", answers, treeCpuMs(relay.pid) - before, "—"));
  burstRows.push(await burst("raw ws relay (baseline)", relay.pid, viaRelay));
  for (const length of p.lengths) {
    const lp: TokenPlan = { tokens: length, frameMs: p.costFrameMs };
    const jobs = p.costStreams * Math.max(1, Math.round(p.costFrames / length));
    const c = await cpuPerFrame(relay.pid, jobs, lp, viaRelay);
    costRows.push([
      `${length}-token answers (raw ws relay)`,
      `${c.us.toFixed(0)}`,
      "",
      c.perChunk,
      c.ok,
    ]);
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
    "frames/s from first token",
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
printTable(
  ["per-frame cost", "CPU µs/frame", "÷ first row", "tokens per chunk", "jobs ok"],
  costRows,
);
console.log("");
printTable(
  [
    "open-path burst",
    "requests",
    "TTFT min",
    "TTFT p50",
    "TTFT max",
    "CPU ms/request",
    "requests × CPU",
    "jobs ok",
  ],
  burstRows,
);
console.log(
  "\nframes/s = tokens the clients received ÷ wall time of the phase; from first token = " +
    "each stream's tokens ÷ its own time from first token to end, summed over the streams; " +
    "ideal = tokens × frame interval; TTFT = request sent → first token at the client; tokens per chunk = tokens ÷ the " +
    "SSE chunks (or relayed frames) they arrived in, 1 when every frame is relayed on its own; " +
    "CPU = user+system time of " +
    "wrangler dev + workerd (or the relay process) during the phase ÷ frames. All Region shards " +
    "of a local `wrangler dev` run in one workerd process on this machine. Open-path burst = " +
    "after the measured round, as many one-token requests as streams, all at once: TTFT is " +
    "then the open path alone (no token load), CPU the coordinator's per request; the " +
    "Worker, the Region and every other object of a local `wrangler dev` take turns on one " +
    "thread, so the requests finish their open paths together, near requests × CPU.",
);
for (const n of notes) console.log(n);
if (pairs.length) {
  console.log("");
  const ratioRows = pairs.map(({ base, mine }, i) => {
    const fps = Number(mine.row[1]) / Number(base.row[1]);
    // Columns after the splice below: name, frames/s, ÷ raw, from first token, × ideal, p50, p95, CPU.
    const cpu = Number(mine.row[7]) / Number(base.row[7]);
    const cost = mine.costs.map((c, j) => `${(c.us / base.costs[j]!.us).toFixed(2)}×`);
    const open = Number(mine.burst[5]) / Number(base.burst[5]);
    return [
      `pair ${i + 1}`,
      `${fps.toFixed(2)}×`,
      `${cpu.toFixed(2)}×`,
      `${open.toFixed(2)}×`,
      ...cost,
    ];
  });
  printTable(
    [
      "this ÷ baseline",
      "frames/s",
      "CPU µs/frame",
      "open-path CPU/request",
      ...p.lengths.map((l) => `CPU µs/frame, ${l}-token answers`),
    ],
    ratioRows,
  );
}

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
  // Each stream's tokens over its own time from first token to end, summed over the streams: the
  // relay's rate without the wait for the first token (which the "open-path burst" table measures).
  const streaming = ok.reduce(
    (sum, a) => sum + (a.tokenAt.length * 1000) / Math.max(1, a.endAt - a.tokenAt[0]!),
    0,
  );
  return [
    name,
    ((frames * 1000) / wall).toFixed(0),
    streaming.toFixed(0),
    `${(wall / ideal).toFixed(2)}×`,
    `${percentile(ttft, 50).toFixed(1)} ms`,
    `${percentile(ttft, 95).toFixed(1)} ms`,
    frames ? ((cpuMs * 1000) / frames).toFixed(0) : "n/a",
    spread,
    `${ok.length}/${answers.length}`,
  ];
}

/**
 * The open path alone under the measured round's burst: as many one-token requests as streams,
 * all at once, and the CPU of `pid` (the coordinator, or the relay process) per request.
 */
async function burst(name: string, pid: number | undefined, path: Path): Promise<string[]> {
  if (pid === undefined) throw new Error("no process to measure");
  const before = treeCpuMs(pid);
  const answers = await runJobs(p.streams, p.streams, { tokens: 1, frameMs: p.frameMs }, path);
  const perRequest = (treeCpuMs(pid) - before) / answers.length;
  const ttft = answers.filter((a) => a.ok).map((a) => a.tokenAt[0]! - a.sentAt);
  const failed = answers.find((a) => !a.ok);
  if (failed) notes.push(`${name}, open-path burst: a job failed: ${failed.error}`);
  return [
    name,
    String(answers.length),
    `${Math.min(...ttft).toFixed(1)} ms`,
    `${percentile(ttft, 50).toFixed(1)} ms`,
    `${Math.max(...ttft).toFixed(1)} ms`,
    perRequest.toFixed(1),
    `${(perRequest * answers.length).toFixed(0)} ms`,
    okCount(answers),
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
  const chunks = answers.reduce((n, a) => n + a.chunks, 0);
  return {
    us: frames ? (cpuMs * 1000) / frames : NaN,
    ok: okCount(answers),
    perChunk: chunks ? (frames / chunks).toFixed(2) : "n/a",
  };
}

/** `wrangler dev` of the checkout at `root`, loaded from its own path (as bench:overhead does). */
async function startCoordinator(
  root: string,
  options: Parameters<typeof import("../test/support/wrangler-dev.js").startWranglerDev>[0],
): Promise<WranglerDev> {
  mkdirSync(resolve(root, "dist"), { recursive: true });
  const url = pathToFileURL(resolve(root, "test/support/wrangler-dev.ts")).href;
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
