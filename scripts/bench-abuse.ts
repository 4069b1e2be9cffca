/**
 * bench:abuse — does a stranger slow a legitimate client down? The real coordinator (`wrangler
 * dev` on 127.0.0.1, production-like: anonymous tier off, admin token set, development peer-id key)
 * serves a legitimate client — an API key, streaming chat completions answered by simulated tabs
 * (scripts/churn/sim-tab.ts, the real tab protocol over Node's `ws`) — in phases of the same
 * number of sequential requests:
 *
 *   quiet         nothing else runs (the baseline, measured first in the same run)
 *   tab-flood     a registered abusive tab floods `status` frames, reconnecting whenever closed
 *   socket-flood  an abusive client keeps opening tab sockets that never say hello and
 *                 signalling sockets with issued, made-up and expired peer ids
 *   unauth-flood  concurrent requests with made-up `tg_…` keys, no key, and 2 MB chunked bodies
 *   quiet-again   nothing else runs (how much the machine itself drifted)
 *
 * Every limit is at its production default; each abuser has its own address (see `abuserIp`), and
 * the tab and unauthenticated flooders run in their own processes (scripts/abuse/).
 *
 * It prints one table: the client's p50/p95 end-to-end latency (POST → `data: [DONE]`) per phase
 * and each p95 over the quiet p95 (target ≤ 1.2×), with what the abuser managed. Loopback only;
 * bounded: at most 200 requests per phase and each abuser capped in count and time.
 * A benchmark, not a test: it prints what it measured and exits 0 unless the harness broke.
 *
 *   node scripts/sim/run-ts.mjs scripts/bench-abuse.ts [--requests 40] [--tabs 2] [--tokens 32]
 *        [--token-rate 400] [--frame-ms 20] [--timeout-ms 10000] [--seed N]
 *        [--phases quiet,tab-flood,socket-flood,unauth-flood,quiet-again] [--abuser-ip 203.0.113|same]
 *        [--rounds 1]   (the phase list N times; each phase reported over its N blocks)
 *        [--unauth-kinds key,nokey,big]   (which unauthenticated requests, in turn; all by default)
 *        [--past-proxy]   (everything straight to the Worker's own workerd, past wrangler's proxy)
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import WebSocket from "ws";
import type { WranglerDev } from "../test/support/wrangler-dev.js";
import { Observations } from "./churn/observations.js";
import { childPids, treeCpuMs } from "./overhead/proc-cpu.js";
import { jobPrompt, planJob } from "./churn/plan.js";
import { SimTab } from "./churn/sim-tab.js";
import { numberFlag, percentile, printTable, readFlags } from "./sim/flags.js";
import { innerWorkerOrigin } from "./overhead-inner-origin.js";

const flags = readFlags(process.argv.slice(2));
const requests = numberFlag(flags, "requests", 40);
const tabCount = numberFlag(flags, "tabs", 2);
/**
 * The abusers' addresses. wrangler dev sets `cf-connecting-ip` from the socket (127.0.0.1 for every
 * process here) only when the request has none, so each abuser sends its own (`<prefix>.1` the tab
 * flooder, `.2` the socket opener, `.3` the unauthenticated client), as strangers on other addresses
 * are seen in production, where Cloudflare sets the header and no client can. Each phase has its
 * own so one abuser's penalty does not stop the next. `--abuser-ip same` sends none: abusers,
 * client and tabs then share 127.0.0.1, as behind one NAT.
 */
const abuserIp = flags.get("abuser-ip") ?? "203.0.113";
/** The socket opener's (in this process: it sends little and waits on each socket). */
const abuserHeaders: Record<string, string> =
  abuserIp === "same" ? {} : { "cf-connecting-ip": `${abuserIp}.2` };
const unauthKinds = (flags.get("unauth-kinds") ?? "key,nokey,big").split(",");
/**
 * `--past-proxy`: every request and socket (client, tabs, abusers) goes straight to the user
 * Worker's own workerd, past wrangler dev's local proxy (a second workerd that production does not
 * have), to tell the proxy's share of an abusive phase from the coordinator's.
 */
const pastProxy = flags.has("past-proxy");
const tokens = numberFlag(flags, "tokens", 32);
const tokenRate = numberFlag(flags, "token-rate", 400);
const frameMs = numberFlag(flags, "frame-ms", 20);
const seed = numberFlag(flags, "seed", Date.now() % 1_000_000);
/**
 * `--rounds N` runs the phase list N times and reports each phase over all its rounds: on a shared
 * machine whose load drifts, interleaved quiet and abusive blocks see the same drift, where one
 * block each would compare two different moments.
 */
const rounds = numberFlag(flags, "rounds", 1);
/** A legitimate request that takes longer than this counts as failed (and at this time). */
const timeoutMs = numberFlag(flags, "timeout-ms", 10_000);
/** After an abusive phase, wait at most this long for the coordinator to be quiet-fast again. */
const RECOVERY_MAX_MS = 60_000;
const ALL_PHASES = ["quiet", "tab-flood", "socket-flood", "unauth-flood", "quiet-again"] as const;
type Phase = (typeof ALL_PHASES)[number];
const phases = (flags.get("phases") ?? ALL_PHASES.join(",")).split(",") as Phase[];
for (const p of phases) if (!ALL_PHASES.includes(p)) throw new Error(`--phases: unknown '${p}'`);
if (requests > 200 || tabCount > 20 || rounds > 10 || requests * rounds > 400)
  throw new Error(
    "bounded benchmark: ≤ 200 requests, ≤ 20 tabs, ≤ 10 rounds, ≤ 400 requests a phase",
  );

const MODEL = "bench-abuse-model";
const ADMIN_TOKEN = "bench-abuse-admin-token-0123456789";
/** Each abuser stops after this many actions, or when its phase ends. */
const ABUSE_CAP = 100_000;
const tokensPerFrame = Math.max(1, Math.round((tokenRate * frameMs) / 1000));

interface AbuseCounts {
  [what: string]: number;
}

/** An abuser running during one phase; `stop` ends it and reports what it managed. */
interface Abuser {
  /** Resolves once the abuse is under way (default: at once). */
  ready?: Promise<void>;
  stop(): Promise<AbuseCounts>;
}

function bump(counts: AbuseCounts, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

/**
 * An abuser in its own process (scripts/abuse/*.ts), so its sending loop does not hold up this
 * process's event loop (the legitimate client and tabs) — only the machine is shared, as it would
 * not be in production. The child prints `flooding` once started and, after SIGTERM, one JSON line
 * of what it managed.
 */
function childAbuser(script: string, args: string[]): Abuser {
  const child = spawn(process.execPath, ["scripts/sim/run-ts.mjs", script, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  let counts: AbuseCounts = {};
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  lines.on("line", (line) => {
    if (line === "flooding") markReady();
    else if (line.startsWith("{")) counts = JSON.parse(line) as AbuseCounts;
  });
  void exited.then(markReady);
  return {
    ready,
    async stop() {
      // Its own CPU competes for the same cores as the coordinator: reported with what it did.
      const cpuMs = child.pid === undefined ? NaN : treeCpuMs(child.pid);
      child.kill("SIGTERM");
      await exited;
      return { ...counts, "own CPU s": Math.round(cpuMs / 100) / 10 };
    },
  };
}

const ipArgs = (n: number) => (abuserIp === "same" ? [] : ["--ip", `${abuserIp}.${n}`]);

/** A registered tab that sends `status` frames as fast as its socket takes them, reconnecting whenever closed. */
const tabFlood = (wsUrl: string) =>
  childAbuser("scripts/abuse/tab-flooder.ts", [
    "--url",
    wsUrl,
    "--cap",
    String(ABUSE_CAP),
    ...ipArgs(1),
  ]);

/** Sockets that never speak: tab sockets without hello, signalling sockets held open. */
function socketFlood(origin: string): Abuser {
  const counts: AbuseCounts = {};
  const held: WebSocket[] = [];
  let stopped = false;
  const wsOrigin = origin.replace(/^http/, "ws");
  const open = (url: string, label: string) =>
    new Promise<void>((done) => {
      const ws = new WebSocket(url, { headers: abuserHeaders });
      held.push(ws);
      ws.on("open", () => bump(counts, `${label} opened`));
      ws.on("unexpected-response", (_req, res) => {
        bump(counts, `${label} HTTP ${res.statusCode}`);
        done();
      });
      ws.on("error", () => done());
      ws.on("close", (code) => {
        bump(counts, `${label} closed ${code}`);
        done();
      });
      // Held until closed by the coordinator, or for 2 s, whichever comes first.
      setTimeout(done, 2000);
    });
  const peerUrl = (id: string) =>
    `${wsOrigin}/v1/signal/peerjs?key=peerjs&id=${id}&token=t${held.length}&version=1.5.5`;
  const loop = (async () => {
    for (let i = 0; i < ABUSE_CAP && !stopped; i++) {
      const batch: Array<Promise<void>> = [];
      for (let k = 0; k < 8; k++) batch.push(open(`${wsOrigin}/v1/nodes/connect`, "tab"));
      const issued = await fetch(`${origin}/v1/signal/peerjs/id`, {
        headers: abuserHeaders,
      }).then((r) => r.text());
      for (let k = 0; k < 4; k++) batch.push(open(peerUrl(issued), "signal (issued id)"));
      const hex = Array.from({ length: 32 }, (_, j) => ((i * 7 + j) % 16).toString(16)).join("");
      batch.push(open(peerUrl(`tg-weur-${hex}`), "signal (made-up id)"));
      await Promise.all(batch);
      for (const ws of held.splice(0)) ws.terminate();
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      for (const ws of held.splice(0)) ws.terminate();
      return counts;
    },
  };
}

/** Requests that no valid key backs: made-up keys, no key, oversized chunked bodies; 8 at once. */
const unauthFlood = (origin: string) =>
  childAbuser("scripts/abuse/unauth-flooder.ts", [
    "--origin",
    origin,
    "--kinds",
    unauthKinds.join(","),
    "--concurrency",
    "8",
    "--cap",
    String(ABUSE_CAP),
    "--model",
    MODEL,
    ...ipArgs(3),
  ]);

/** One legitimate streamed request: POST → the whole SSE body; ms, and whether it was right. */
async function legitRequest(
  origin: string,
  apiKey: string,
  index: number,
): Promise<{ ms: number; ok: boolean; why?: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({
        model: MODEL,
        stream: true,
        messages: [{ role: "user", content: jobPrompt(seed, index) }],
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const expected = planJob({ seed, tokensPerJob: tokens, tokensPerFrame, dropRate: 0 }, index);
    let got = "";
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: {")) continue;
      const chunk = JSON.parse(line.slice(6)) as { choices?: { delta?: { content?: string } }[] };
      got += chunk.choices?.[0]?.delta?.content ?? "";
    }
    const ok = res.status === 200 && text.includes("data: [DONE]") && got === expected.text;
    const why = ok ? undefined : `HTTP ${res.status} ${text.slice(0, 160).replaceAll("\n", " ")}`;
    return { ms: performance.now() - t0, ok, ...(why ? { why } : {}) };
  } catch (e) {
    return { ms: performance.now() - t0, ok: false, why: String(e) };
  }
}

async function startCoordinator(vars: Record<string, string>): Promise<WranglerDev> {
  const url = pathToFileURL(resolve("test/support/wrangler-dev.ts")).href;
  const mod = (await import(url)) as typeof import("../test/support/wrangler-dev.js");
  return mod.startWranglerDev({ vars, timeoutMs: 90_000 });
}

function commit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "not a git checkout";
  }
}

// wrangler serves dist/ as static assets; the API needs none, but the folder must exist.
mkdirSync(resolve("dist"), { recursive: true });
console.log(
  `bench:abuse seed=${seed} requests/phase=${requests} tabs=${tabCount} tokens/job=${tokens} ` +
    `abusers' addresses=${abuserIp === "same" ? "127.0.0.1 (the client's)" : `${abuserIp}.1-3`} ` +
    `(${tokensPerFrame} every ${frameMs} ms) rounds=${rounds} commit=${commit()} load=${loadavg()[0]!.toFixed(1)}`,
);
const server = await startCoordinator({
  ANONYMOUS_TIER: "off",
  ADMIN_TOKEN,
  ALLOW_LOCATION_HEADER: "false",
  SIGNAL_DEV_SECRET: "true",
  // Production limits (MAX_NODES_PER_IP 8, TAB_CONNECTS_PER_MIN 60, …). With the abusers on
  // 127.0.0.1 too (`--abuser-ip same`) the legitimate tabs' sockets would take from the abuser's 8:
  // the limit is raised by exactly their number, so the abuser still gets production's 8.
  ...(abuserIp === "same" ? { MAX_NODES_PER_IP: String(tabCount + 8) } : {}),
});
// wrangler runs in its own process group: stop it too if this benchmark is interrupted.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => void server.stop().finally(() => process.exit(130)));
}
const obs = new Observations();
const tabs: SimTab[] = [];
// Where the time goes: CPU of the coordinator (wrangler dev + workerd) and of this process (the
// legitimate client, the simulated tabs and the abuser) during each phase, against its wall time.
const coordinatorPid = childPids("wrangler")[0];
const coordinatorCpuMs = () => (coordinatorPid === undefined ? NaN : treeCpuMs(coordinatorPid));
let workerPid: number | undefined;
const workerCpuMs = () => (workerPid === undefined ? NaN : treeCpuMs(workerPid));
const s1 = (ms: number) => (ms / 1000).toFixed(1);
const benchCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
try {
  const inner =
    coordinatorPid !== undefined ? await innerWorkerOrigin(coordinatorPid, server.port) : null;
  if (pastProxy && !inner) throw new Error("--past-proxy: the Worker's own workerd was not found");
  // The Worker's own workerd (the coordinator's code: Worker and objects) apart from the rest of
  // wrangler dev (its proxy worker's workerd and its Node process), which production does not have.
  workerPid = inner?.pid;
  const origin = pastProxy && inner ? inner.origin : server.origin;
  if (inner) console.log(`past the proxy: ${inner.origin} (wrangler dev: ${server.origin})`);
  const made = await fetch(`${origin}/v1/admin/keys`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ name: "bench-abuse", rpm: 100_000, concurrent: 100 }),
  });
  if (made.status !== 201) throw new Error(`could not create a key: ${made.status}`);
  const apiKey = ((await made.json()) as { key: string }).key;
  const wsUrl = `${origin.replace(/^http/, "ws")}/v1/nodes/connect`;
  for (let i = 0; i < tabCount; i++) {
    const tab = new SimTab(
      i,
      {
        wsUrl,
        model: MODEL,
        plan: { tokensPerJob: tokens, tokensPerFrame, dropRate: 0 },
        frameMs,
        rejoinMs: 500,
        silentMaxMs: 60_000,
      },
      obs,
    );
    await tab.start();
    tabs.push(tab);
  }
  // Warm-up (first requests compile code paths and create the key's object): not measured.
  for (let i = 0; i < 5; i++) await legitRequest(origin, apiKey, 1_000_000 + i);

  /**
   * One row per phase, over all rounds. `s`: after the abuser stopped, seconds until a request was
   * as fast as the quiet p95 (the longest of the rounds). `cpu`: CPU and wall ms, summed.
   */
  const rows: Array<{
    phase: Phase;
    ms: number[];
    ok: number;
    abuse: AbuseCounts;
    s: number;
    cpu: { coordinator: number; worker: number; bench: number; wall: number };
  }> = [];
  let next = 0;
  for (let round = 0; round < rounds; round++) {
    for (const phase of phases) {
      const abuser =
        phase === "tab-flood"
          ? tabFlood(wsUrl)
          : phase === "socket-flood"
            ? socketFlood(origin)
            : phase === "unauth-flood"
              ? unauthFlood(origin)
              : null;
      // Let the abuse get going before the first measured request.
      await abuser?.ready;
      if (abuser) await new Promise((r) => setTimeout(r, 1000));
      const started = performance.now();
      const cpu0 = { coordinator: coordinatorCpuMs(), worker: workerCpuMs(), bench: benchCpuMs() };
      const ms: number[] = [];
      let ok = 0;
      for (let i = 0; i < requests; i++) {
        const r = await legitRequest(origin, apiKey, next++);
        ms.push(r.ms);
        if (r.ok) ok++;
        else console.log(`  ${phase}: request ${i} failed after ${r.ms.toFixed(0)} ms: ${r.why}`);
      }
      const cpu = {
        coordinator: coordinatorCpuMs() - cpu0.coordinator,
        worker: workerCpuMs() - cpu0.worker,
        bench: benchCpuMs() - cpu0.bench,
        wall: performance.now() - started,
      };
      const abuse = (await abuser?.stop()) ?? {};
      // Phases are measured apart: wait until a request is as fast as the quiet ones again (the
      // coordinator may still be working through what the abuser sent), and report how long.
      const stoppedAt = performance.now();
      const quietRow = rows.find((r) => r.phase === "quiet");
      const quietP95 = quietRow?.ms.length ? percentile(quietRow.ms, 95) : Infinity;
      while (abuser && performance.now() - stoppedAt < RECOVERY_MAX_MS) {
        const probe = await legitRequest(origin, apiKey, 2_000_000 + next++);
        if (probe.ok && probe.ms <= quietP95) break;
      }
      const recoveryS = abuser ? (performance.now() - stoppedAt) / 1000 : 0;
      const row = rows.find((r) => r.phase === phase);
      if (!row) rows.push({ phase, ms, ok, abuse, s: recoveryS, cpu });
      else {
        row.ms.push(...ms);
        row.ok += ok;
        for (const [k, v] of Object.entries(abuse)) bump(row.abuse, k, v);
        row.s = Math.max(row.s, recoveryS);
        for (const k of Object.keys(cpu) as Array<keyof typeof cpu>) row.cpu[k] += cpu[k];
      }
      const label = rounds > 1 ? `round ${round + 1} ${phase}` : phase;
      process.stdout.write(`${label}: ${((stoppedAt - started) / 1000).toFixed(1)} s\n`);
    }
  }

  const quiet = rows.find((r) => r.phase === "quiet");
  const quietP95 = quiet ? percentile(quiet.ms, 95) : NaN;
  console.log("");
  printTable(
    [
      "phase",
      "requests",
      "complete & correct",
      "p50 ms",
      "p95 ms",
      "p95 / quiet p95",
      "back to quiet after",
      "CPU s: coordinator (its Worker's workerd) / bench / wall",
      "abuser did",
    ],
    rows.map((r) => {
      const p95 = percentile(r.ms, 95);
      const abuse = Object.entries(r.abuse)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k}: ${Math.round(v * 10) / 10}`)
        .join(", ");
      return [
        r.phase,
        String(r.ms.length),
        `${r.ok}/${r.ms.length}`,
        percentile(r.ms, 50).toFixed(0),
        p95.toFixed(0),
        r.phase === "quiet" ? "1.00 (baseline)" : `${(p95 / quietP95).toFixed(2)}`,
        r.phase.startsWith("quiet") ? "—" : `${r.s.toFixed(1)} s`,
        `${s1(r.cpu.coordinator)} (${s1(r.cpu.worker)}) / ${s1(r.cpu.bench)} / ${s1(r.cpu.wall)}`,
        abuse || "—",
      ];
    }),
  );
  console.log(
    "\nTarget (issue 11): every abusive phase ≤ 1.2× the quiet p95 of the same run." +
      "\nLatency = POST /v1/chat/completions (stream) → `data: [DONE]`, one request at a time," +
      ` ${tokens} tokens at ${tokenRate} tokens/s from ${tabCount} simulated tabs.` +
      "\nCPU s = CPU seconds of the coordinator (wrangler dev + workerd; in brackets the Worker's own" +
      " workerd, without wrangler's proxy and Node process) and of this process (client, simulated" +
      " tabs, socket opener) while the phase's requests ran, and the phase's wall seconds." +
      `\nMachine load average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} (shared machine: the quiet-again row shows drift).`,
  );
} finally {
  for (const t of tabs) t.stop();
  await server.stop();
}
