/**
 * bench:overhead — what the coordinator itself costs a streamed answer, measured in one run on
 * loopback: the same jobs, served by the same fixed-timing tab code (scripts/overhead/bench-tab.ts),
 * reach the client either through the full coordinator path (streaming HTTP client → Worker →
 * Region object → Node `ws` tab and back, `wrangler dev` on 127.0.0.1) or over a direct WebSocket
 * to the tab (the baseline); and how many token frames per second one Region object relays with N
 * concurrent streams, against a raw Node `ws` relay (its own process, forwarding frames as they
 * are) under the same offered load. Per-frame cost per answer length is the CPU time of the
 * coordinator's processes (wrangler dev + workerd) per frame, from /proc, against the raw relay's.
 * A benchmark, not a test: it prints what it measured and exits 0 unless the harness broke.
 *
 *   npm run bench:overhead -- [--latency-jobs 60] [--latency-streams 4] [--latency-tokens 20]
 *        [--latency-frame-ms 20] [--streams 1,10,20,40] [--relay-tokens 200] [--relay-frame-ms 10]
 *        [--lengths 100,1000,4000] [--cost-streams 2] [--cost-frames 2000] [--cost-frame-ms 2]
 *        [--root DIR]   (run the coordinator of another checkout, e.g. the base commit exported)
 *        [--quick]      (smaller preset: fewer jobs, shorter answers)
 *        [--latency-only] (only the added-latency phase: no relay or per-frame cost rows)
 *        [--no-inner]   (skip the same latency jobs sent past wrangler dev's local proxy)
 *        [--latency-rounds 3] (interleaved rounds of the latency jobs: each door, each round;
 *                             --quick: 2)
 *        [--solo-jobs 40] (the same latency jobs one at a time, after the concurrent ones;
 *                          --quick: 24; 0 skips them)
 *        [--local-observability] (keep wrangler dev's local trace collector on: see below)
 *        [--help]       (this text)
 *
 * wrangler dev's share: the latency jobs run a second time with the tabs and the clients talking
 * to the user Worker's own workerd, past wrangler dev's ProxyWorker (overhead-inner-origin.ts),
 * and a trivial route (a 404 that touches no Durable Object) is timed through both doors against a
 * Node HTTP server, so the table says how much of the added time the proxy takes.
 *
 * wrangler dev (4.x) attaches a local trace collector to the user Worker by default
 * (X_LOCAL_OBSERVABILITY): a span for every request, RPC call, socket message and SQLite
 * statement, streamed to a trace store in the same workerd. Cloudflare runs no such collector, and
 * it cost about 25 ms of the coordinator's workerd CPU per 20-token job here (docs/performance.md,
 * "Per-request CPU (session 8)"), so the bench turns it off unless --local-observability is given.
 */
import { cpus } from "node:os";
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { WranglerDev } from "../test/support/wrangler-dev.js";
import { numberFlag, numberList, percentile, printTable, readFlags } from "./sim/flags.js";
import { CoordinatorTab, startDirectTabs, type TokenPlan } from "./overhead/bench-tab.js";
import {
  coordinatorAnswer,
  openSocket,
  relayAnswer,
  socketAnswer,
  type Answer,
} from "./overhead/clients.js";
import { framesOf, okCount, runPool, startRawRelay } from "./overhead/job-pool.js";
import { childPids, treeCpuMs } from "./overhead/proc-cpu.js";
import { innerWorkerOrigin } from "./overhead-inner-origin.js";
import { createServer } from "node:http";
import { describeSource } from "./overhead/source-label.js";

const flags = readFlags(process.argv.slice(2));
if (flags.has("help")) {
  // The usage is this file's opening comment (run-ts bundles the script: read the source).
  const head = readFileSync(resolve("scripts/bench-overhead.ts"), "utf8").split("*/")[0]!;
  console.log(head.replace(/^\/\*\*\n?/, "").replace(/^ \* ?/gm, ""));
  process.exit(0);
}
const quick = flags.has("quick");
const localObservability = flags.has("local-observability");
// Read by wrangler dev (the coordinator is started with this process's environment).
process.env.X_LOCAL_OBSERVABILITY = localObservability ? "true" : "false";
const latencyOnly = flags.has("latency-only");
const inner = !flags.has("no-inner");
const p = {
  latencyJobs: numberFlag(flags, "latency-jobs", quick ? 24 : 60),
  // --quick: 2 rounds, so `npm run bench` stays within its time limit for this benchmark.
  latencyRounds: numberFlag(flags, "latency-rounds", quick ? 2 : 3),
  latencyStreams: numberFlag(flags, "latency-streams", 4),
  soloJobs: numberFlag(flags, "solo-jobs", quick ? 24 : 40),
  latencyTokens: numberFlag(flags, "latency-tokens", 20),
  latencyFrameMs: numberFlag(flags, "latency-frame-ms", 20),
  streams: latencyOnly ? [] : numberList(flags, "streams", quick ? [1, 10, 40] : [1, 10, 20, 40]),
  relayTokens: numberFlag(flags, "relay-tokens", quick ? 100 : 200),
  relayFrameMs: numberFlag(flags, "relay-frame-ms", 10),
  lengths: latencyOnly ? [] : numberList(flags, "lengths", [100, 1000, 4000]),
  costStreams: numberFlag(flags, "cost-streams", 2),
  costFrames: numberFlag(flags, "cost-frames", quick ? 1000 : 2000),
  costFrameMs: numberFlag(flags, "cost-frame-ms", 2),
  timeoutMs: numberFlag(flags, "timeout-ms", 60_000),
  root: resolve(flags.get("root") ?? "."),
};
const maxStreams = Math.max(...p.streams, p.latencyStreams, p.costStreams);
if (maxStreams > 200 || p.latencyJobs > 1000 || Math.max(0, ...p.lengths) > 8000) {
  throw new Error("bounded benchmark: at most 200 streams, 1000 latency jobs, 8000 tokens");
}
// The tabs speak the newest protocol the coordinator under test knows (an older checkout refuses
// a newer hello).
const protocol = Number(
  /PROTOCOL_VERSION = (\d+)/.exec(
    readFileSync(resolve(p.root, "shared/protocol/version.ts"), "utf8"),
  )![1],
);

console.log(
  `bench:overhead ${new Date().toISOString()} on ${cpus()[0]?.model ?? "?"} ×${cpus().length}, ` +
    `Node ${process.version}`,
);
console.log(`coordinator source: ${p.root} (${describeSource(p.root)}), tab protocol ${protocol}`);
console.log(
  `wrangler dev's local trace collector: ${localObservability ? "on (--local-observability)" : "off (X_LOCAL_OBSERVABILITY=false)"}`,
);
console.log(
  `latency: ${p.latencyJobs} jobs, ${p.latencyStreams} at a time, ${p.latencyTokens} tokens, ` +
    `one token per frame, first at once then every ${p.latencyFrameMs} ms`,
);

// wrangler.toml serves dist/ as static assets; the bench calls only the API, so an empty folder
// is enough where the pages were never built.
mkdirSync(resolve(p.root, "dist"), { recursive: true });
const server = await startCoordinator(p.root, {
  MAX_NODES_PER_IP: String(maxStreams * 2 + 10),
  // Simulated tabs all connect from 127.0.0.1: no reconnect limit for the address here.
  TAB_CONNECTS_PER_MIN: "1000000",
  TAB_FRAMES_PER_S: "5000",
  TAB_FRAME_BURST: "10000",
  ANONYMOUS_TIER: "on",
  ANONYMOUS_RPM: "10000000",
  ANONYMOUS_CONCURRENT: "1000000",
  // Answer verification off: its canary jobs would take the bench tabs at random.
  TRUST: "off",
});
const coordinatorPid = childPids("wrangler")[0];
const relay = await startRawRelay();
const direct = await startDirectTabs();
let tabs: CoordinatorTab[] = [];
let nextIndex = 0;
let nextTab = 0;
/** The user Worker's workerd past wrangler dev's proxy, once found. */
let innerOriginFound: string | null = null;
const TRIVIAL_PATH = "/v1/overhead-trivial-route";
const TRIVIAL_TRIPS = 100;
const rows: string[][] = [];
const notes: string[] = [];
try {
  await connectTabs(server.origin);
  // Warm-up: the Worker's and the object's code paths, and the HTTP connection pool.
  await runJobs(p.latencyStreams, p.latencyStreams * 2, { tokens: 5, frameMs: 5 }, viaCoordinator);

  // ---- 1. added latency ----------------------------------------------------------------------
  const lat: TokenPlan = { tokens: p.latencyTokens, frameMs: p.latencyFrameMs };
  // Through wrangler dev's door, directly to the tabs, and past wrangler dev's proxy, in
  // interleaved rounds (the tabs reconnect through the door the clients use): on a shared machine
  // the load drifts within a run, and each door gets its share of every stretch of it.
  const found =
    inner && coordinatorPid !== undefined
      ? await innerWorkerOrigin(coordinatorPid, server.port)
      : null;
  const innerOrigin = found?.origin ?? null;
  if (inner && !innerOrigin) notes.push("wrangler dev's inner workerd not found: no proxy rows");
  const rounds = innerOrigin ? p.latencyRounds : 1;
  const perRound = Math.ceil(p.latencyJobs / rounds);
  const tg: Answer[] = [];
  const dt: Answer[] = [];
  const tgIn: Answer[] = [];
  const warm = { tokens: 5, frameMs: 5 };
  // CPU of the coordinator's processes while each door's latency jobs run: the user Worker's
  // workerd (the product) and the rest of wrangler dev (its Node process and the proxy's workerd).
  const cpu = { proxy: { product: 0, rest: 0 }, inner: { product: 0, rest: 0 } };
  const timed = async (door: "proxy" | "inner", path: Path) => {
    const at = () => ({
      all: coordinatorPid !== undefined ? treeCpuMs(coordinatorPid) : 0,
      product: found ? treeCpuMs(found.pid) : 0,
    });
    const before = at();
    const answers = await runJobs(p.latencyStreams, perRound, lat, path);
    const after = at();
    cpu[door].product += after.product - before.product;
    cpu[door].rest += after.all - before.all - (after.product - before.product);
    return answers;
  };
  for (let r = 0; r < rounds; r++) {
    tg.push(...(await timed("proxy", viaCoordinator)));
    dt.push(...(await runJobs(p.latencyStreams, perRound, lat, viaDirect)));
    if (!innerOrigin) continue;
    await connectTabs(innerOrigin);
    await runJobs(p.latencyStreams, p.latencyStreams * 2, warm, viaInner);
    tgIn.push(...(await timed("inner", viaInner)));
    await connectTabs(server.origin);
    await runJobs(p.latencyStreams, p.latencyStreams * 2, warm, viaCoordinator);
  }
  const ttft = (a: Answer[]) => a.filter((x) => x.ok).map((x) => x.tokenAt[0]! - x.sentAt);
  const gaps = (a: Answer[]) =>
    a.filter((x) => x.ok).flatMap((x) => x.tokenAt.slice(1).map((t, i) => t - x.tokenAt[i]!));
  notes.push(`latency jobs complete: Tabgrid ${okCount(tg)}, direct ${okCount(dt)}`);
  const at = `${p.latencyStreams} ${p.latencyStreams === 1 ? "stream" : "streams"} at a time`;
  for (const [q, target] of [
    [50, null],
    [95, 5],
    [99, null],
  ] as const) {
    rows.push(addedRow(`time to first token p${q}, ${at}`, ttft(tg), ttft(dt), q, target));
  }
  for (const [q, target] of [
    [50, null],
    [99, 1],
  ] as const) {
    rows.push(addedRow(`inter-token delay p${q}, ${at}`, gaps(tg), gaps(dt), q, target));
  }

  // ---- 1a. the same jobs one stream at a time ------------------------------------------------
  // With several streams at once, each first token and each frame also waits for the other
  // streams' work on this machine's cores, which the clients, the tabs, wrangler dev and the
  // coordinator all share (2 cores here: docs/performance.md, "One stream at a time"). One stream
  // at a time measures what the path itself adds; both are shown, each against its target.
  if (p.soloJobs > 0 && p.latencyStreams > 1) {
    const solo: Answer[] = [];
    const soloDirect: Answer[] = [];
    const half = Math.ceil(p.soloJobs / 2);
    for (let r = 0; r < 2; r++) {
      solo.push(...(await runJobs(1, half, lat, viaCoordinator)));
      soloDirect.push(...(await runJobs(1, half, lat, viaDirect)));
    }
    notes.push(`one stream at a time: Tabgrid ${okCount(solo)}, direct ${okCount(soloDirect)}`);
    for (const [q, target] of [
      [50, null],
      [95, 5],
      [99, null],
    ] as const) {
      const name = `time to first token p${q}, one stream at a time`;
      rows.push(addedRow(name, ttft(solo), ttft(soloDirect), q, target));
    }
    const name = "inter-token delay p99, one stream at a time";
    rows.push(addedRow(name, gaps(solo), gaps(soloDirect), 99, 1));
  }

  // ---- 1b. the same jobs past wrangler dev's local proxy, and a trivial route through both ----
  if (innerOrigin) {
    notes.push(
      `past the proxy: ${innerOrigin} (the user Worker's workerd; the proxy: ${server.origin}); ` +
        `${rounds} interleaved rounds of ${perRound} jobs per door`,
    );
    notes.push(`latency jobs past the proxy complete: ${okCount(tgIn)}`);
    for (const q of [50, 95, 99] as const) {
      rows.push(addedRow(`time to first token p${q}, no proxy`, ttft(tgIn), ttft(dt), q, null));
    }
    rows.push(addedRow("inter-token delay p99, no proxy", gaps(tgIn), gaps(dt), 99, null));
    for (const q of [50, 95] as const) {
      const share = percentile(ttft(tg), q) - percentile(ttft(tgIn), q);
      const added = percentile(ttft(tg), q) - percentile(ttft(dt), q);
      notes.push(
        `time to first token p${q}: of ${signed(added)} ms added, wrangler dev's proxy ` +
          `${signed(share)} ms, the coordinator itself ${signed(added - share)} ms`,
      );
    }
    const jobs = rounds * perRound;
    for (const door of ["proxy", "inner"] as const) {
      const c = cpu[door];
      notes.push(
        `CPU per latency job ${door === "proxy" ? "through wrangler dev" : "past the proxy"}: ` +
          `${(c.product / jobs).toFixed(1)} ms in the coordinator's workerd, ` +
          `${(c.rest / jobs).toFixed(1)} ms in the rest of wrangler dev (its Node process, the ` +
          `proxy's workerd) — /proc, ${jobs} jobs of ${p.latencyTokens} tokens`,
      );
    }
    const node = await startTrivialServer();
    const base = await roundTrips(node.origin);
    await node.close();
    for (const [door, origin] of [
      ["through wrangler dev", server.origin],
      ["to its workerd, no proxy", innerOrigin],
    ] as const) {
      const t = await roundTrips(origin);
      for (const q of [50, 95] as const) {
        const a = percentile(t, q);
        const b = percentile(base, q);
        rows.push([
          `trivial route p${q}, ${door}`,
          `${a.toFixed(2)} ms (+${(a - b).toFixed(2)})`,
          `${b.toFixed(2)} ms`,
          ratio(a, b),
          "",
          "",
        ]);
      }
    }
    notes.push(
      `trivial route: ${TRIVIAL_TRIPS} sequential GET ${TRIVIAL_PATH} (the Worker's 404: request id, ` +
        "counting, no Durable Object), one connection; baseline: a Node HTTP server answering 404",
    );
  }

  // ---- 2. relay throughput -------------------------------------------------------------------
  let best = { tg: 0, raw: 0 };
  for (const n of p.streams) {
    const plan: TokenPlan = { tokens: p.relayTokens, frameMs: p.relayFrameMs };
    const offered = (n * 1000) / plan.frameMs;
    const t = throughput(await runJobs(n, n, plan, viaCoordinator), plan);
    const r = throughput(await runJobs(n, n, plan, viaRelay), plan);
    best = { tg: Math.max(best.tg, t.fps), raw: Math.max(best.raw, r.fps) };
    rows.push([
      `frames/s, ${n} streams (offered ${offered.toFixed(0)})`,
      `${t.fps.toFixed(0)} (${t.stretch.toFixed(2)}× ideal)`,
      `${r.fps.toFixed(0)} (${r.stretch.toFixed(2)}× ideal)`,
      ratio(t.fps, r.fps),
      "",
      "",
    ]);
    notes.push(`relay ${n} streams complete: Tabgrid ${t.ok}, raw ${r.ok}`);
  }
  if (p.streams.length > 0)
    rows.push([
      "frames/s, most of the rows above",
      best.tg.toFixed(0),
      best.raw.toFixed(0),
      ratio(best.tg, best.raw),
      "≥ 1000 and ≥ 0.5×",
      met(best.tg >= 1000 && best.tg >= 0.5 * best.raw),
    ]);

  // ---- 3. per-frame cost by answer length ----------------------------------------------------
  const costs: number[] = [];
  for (const length of p.lengths) {
    const plan: TokenPlan = { tokens: length, frameMs: p.costFrameMs };
    const jobs = p.costStreams * Math.max(1, Math.round(p.costFrames / length));
    const c = await cpuPerFrame(coordinatorPid, jobs, plan, viaCoordinator);
    const r = await cpuPerFrame(relay.pid, jobs, plan, viaRelay);
    costs.push(c.us);
    const flat = costs[0]! > 0 ? c.us / costs[0]! : NaN;
    rows.push([
      `CPU µs/frame, ${length}-token answers`,
      `${fixed(c.us)} (${flat.toFixed(2)}× the ${p.lengths[0]}-token row)`,
      fixed(r.us),
      ratio(c.us, r.us),
      "flat: ≤ 1.25× the first row",
      met(flat <= 1.25),
    ]);
    notes.push(
      `cost ${length} tokens: ${jobs} jobs, ${p.costStreams} at a time, one token per frame every ` +
        `${p.costFrameMs} ms; complete: Tabgrid ${c.ok} (${c.frames} frames), raw ${r.ok}; ` +
        `wall Tabgrid ${c.wallMs.toFixed(0)} ms, raw ${r.wallMs.toFixed(0)} ms`,
    );
  }
} finally {
  for (const t of tabs) t.close();
  relay.stop();
  await direct.close();
  await server.stop();
}

console.log("");
printTable(["metric", "Tabgrid", "baseline", "ratio", "target", "met"], rows);
console.log(
  "\nBaselines: latency rows — the same tab code over a direct WebSocket (Tabgrid shows its own " +
    "figure and, in brackets, what the coordinator adds); frames/s and CPU rows — a raw Node `ws` " +
    "relay in its own process forwarding the same frames. Frames/s = tokens the clients received " +
    "÷ wall time of the phase; ideal = tokens × frame interval. CPU = user+system time of " +
    "wrangler dev and workerd (or the relay process) during the phase ÷ frames.",
);
for (const n of notes) console.log(n);

// ---- helpers ---------------------------------------------------------------------------------

type Path = (index: number, plan: TokenPlan) => Promise<Answer>;

function viaCoordinator(index: number, plan: TokenPlan): Promise<Answer> {
  return coordinatorAnswer(server.origin, index, plan, p.timeoutMs);
}

/** The same request past wrangler dev's proxy (to the user Worker's own workerd). */
function viaInner(index: number, plan: TokenPlan): Promise<Answer> {
  return coordinatorAnswer(innerOriginFound!, index, plan, p.timeoutMs);
}

/** (Re)connect the tabs, all through one door: wrangler dev's port or its inner workerd. */
async function connectTabs(origin: string): Promise<void> {
  for (const t of tabs) t.close();
  if (origin !== server.origin) innerOriginFound = origin;
  const wsUrl = `${origin.replace(/^http/, "ws")}/v1/nodes/connect`;
  tabs = Array.from({ length: maxStreams }, () => new CoordinatorTab(wsUrl, protocol, nextTab++));
  for (let i = 0; i < tabs.length; i += 10) {
    await Promise.all(tabs.slice(i, i + 10).map((t) => t.connect()));
  }
}

/** Sequential round trips of GET TRIVIAL_PATH (after 10 unmeasured ones), in ms. */
async function roundTrips(origin: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < TRIVIAL_TRIPS + 10; i++) {
    const t0 = performance.now();
    const res = await fetch(`${origin}${TRIVIAL_PATH}`);
    await res.arrayBuffer();
    if (i >= 10) out.push(performance.now() - t0);
  }
  return out;
}

/** The loopback baseline of the trivial route: a Node HTTP server answering 404 with JSON. */
function startTrivialServer(): Promise<{ origin: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const srv = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":{"message":"not found"}}');
    });
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      resolve({
        origin: `http://127.0.0.1:${port}`,
        close: () => new Promise((r) => srv.close(() => r())),
      });
    });
  });
}

async function viaDirect(index: number, plan: TokenPlan): Promise<Answer> {
  return socketAnswer(await openSocket(direct.url), index, plan, p.timeoutMs);
}

/** Through the raw relay (scripts/overhead/clients.ts relayAnswer). */
function viaRelay(index: number, plan: TokenPlan): Promise<Answer> {
  return relayAnswer(relay.url, index, plan, p.timeoutMs);
}

/** `total` jobs, `concurrent` at a time (a new one starts as one ends). */
async function runJobs(concurrent: number, total: number, plan: TokenPlan, path: Path) {
  const t0 = Date.now();
  process.stdout.write(
    `  ${path.name.replace(/^via/, "")}: ${total} jobs × ${plan.tokens} tokens, ${concurrent} at a time… `,
  );
  const answers = await runPool(concurrent, total, () => path(nextIndex++, plan));
  console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const failed = answers.find((a) => !a.ok);
  if (failed) console.log(`  (a job failed: ${failed.error})`);
  return answers;
}

async function cpuPerFrame(pid: number | undefined, jobs: number, plan: TokenPlan, path: Path) {
  if (pid === undefined) throw new Error("no process to measure");
  const before = treeCpuMs(pid);
  const answers = await runJobs(p.costStreams, jobs, plan, path);
  const cpuMs = treeCpuMs(pid) - before;
  const frames = framesOf(answers);
  const wallMs =
    Math.max(...answers.map((a) => a.endAt)) - Math.min(...answers.map((a) => a.sentAt));
  // No frame through in the time allowed: no per-frame figure (NaN prints as "n/a").
  return { us: frames ? (cpuMs * 1000) / frames : NaN, ok: okCount(answers), wallMs, frames };
}

function throughput(answers: Answer[], plan: TokenPlan) {
  const frames = framesOf(answers);
  const wall = Math.max(...answers.map((a) => a.endAt)) - Math.min(...answers.map((a) => a.sentAt));
  const ideal = plan.tokens * plan.frameMs;
  return { fps: (frames * 1000) / wall, stretch: wall / ideal, ok: okCount(answers) };
}

function addedRow(
  name: string,
  tabgrid: number[],
  base: number[],
  q: number,
  targetAddedMs: number | null,
): string[] {
  const t = percentile(tabgrid, q);
  const b = percentile(base, q);
  const added = t - b;
  return [
    `${name} (added)`,
    `${t.toFixed(2)} ms (+${added.toFixed(2)})`,
    `${b.toFixed(2)} ms`,
    ratio(t, b),
    targetAddedMs === null ? "" : `added ≤ ${targetAddedMs} ms`,
    targetAddedMs === null ? "" : met(added <= targetAddedMs),
  ];
}

function signed(ms: number): string {
  return `${ms >= 0 ? "+" : ""}${ms.toFixed(2)}`;
}

function ratio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : "n/a";
}

function fixed(n: number): string {
  return Number.isFinite(n) ? n.toFixed(0) : "n/a";
}

function met(ok: boolean): string {
  return ok ? "yes" : "no";
}

/** `wrangler dev` of the checkout under test, loaded from its own path (as bench:churn does). */
async function startCoordinator(root: string, vars: Record<string, string>): Promise<WranglerDev> {
  const url = pathToFileURL(resolve(root, "test/support/wrangler-dev.ts")).href;
  const mod = (await import(url)) as typeof import("../test/support/wrangler-dev.js");
  return mod.startWranglerDev({ vars, timeoutMs: 90_000 });
}
