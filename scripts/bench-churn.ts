/**
 * bench:churn — many simulated contributor tabs (Node `ws` clients speaking the real protocol) serve
 * streaming chat completions from the real coordinator (`wrangler dev` on 127.0.0.1), while a share
 * of the jobs lose their tab mid-stream: half by an abrupt TCP drop, half by a tab going silent
 * with its socket open. Two runs on fresh coordinators, same seed and load: failover on
 * (MAX_ATTEMPTS=3) and the baseline with failover off (MAX_ATTEMPTS=1). Clients check every
 * answer against the deterministic text; tabs record when the coordinator reacted to each drop.
 * A benchmark, not a test: it prints what it measured and exits 0 unless the harness itself broke.
 *
 *   node scripts/sim/run-ts.mjs scripts/bench-churn.ts [--tabs 60] [--rps 12] [--duration 30]
 *        [--tokens 48] [--token-rate 40] [--frame-ms 100] [--drop-rate 0.1]
 *        [--status-interval-ms 1000] [--accept-ms 1000] [--lease-ms 1500]
 *        [--redispatch-wait-ms 5000] [--rejoin-ms 1000] [--timeout-ms 20000] [--seed N]
 *        [--runs failover,baseline]
 *        [--log-dir DIR]   (writes each run's coordinator output there)
 *        [--root DIR]      (run the coordinator of another checkout, e.g. an exported commit:
 *                           wrangler dev reloads on every source edit, dropping all sockets)
 */
import { resolve } from "node:path";
import { numberFlag, printTable, readFlags } from "./sim/flags.js";
import { runChurn, type ChurnParams } from "./churn/churn-run.js";
import { TABLE_HEADER, details, measure, tableRow, type RunMetrics } from "./churn/churn-report.js";
import { describeSource } from "./overhead/source-label.js";

const flags = readFlags(process.argv.slice(2));
const statusIntervalMs = numberFlag(flags, "status-interval-ms", 1000);
const params: ChurnParams = {
  seed: numberFlag(flags, "seed", Date.now() % 1_000_000),
  tabs: numberFlag(flags, "tabs", 60),
  rps: numberFlag(flags, "rps", 12),
  durationS: numberFlag(flags, "duration", 30),
  tokensPerJob: numberFlag(flags, "tokens", 48),
  tokensPerSecond: numberFlag(flags, "token-rate", 40),
  frameMs: numberFlag(flags, "frame-ms", 100),
  dropRate: numberFlag(flags, "drop-rate", 0.1),
  statusIntervalMs,
  acceptMs: numberFlag(flags, "accept-ms", statusIntervalMs),
  leaseMs: numberFlag(flags, "lease-ms", 1.5 * statusIntervalMs),
  redispatchWaitMs: numberFlag(flags, "redispatch-wait-ms", 5000),
  rejoinMs: numberFlag(flags, "rejoin-ms", 1000),
  requestTimeoutMs: numberFlag(flags, "timeout-ms", 20_000),
  root: resolve(flags.get("root") ?? "."),
  ...(flags.get("log-dir") ? { logDir: flags.get("log-dir") } : {}),
};
const runs = (flags.get("runs") ?? "failover,baseline").split(",");
const ATTEMPTS: Record<string, number> = { failover: 3, baseline: 1 };
for (const r of runs) if (!(r in ATTEMPTS)) throw new Error(`--runs: unknown run '${r}'`);
if (params.tabs > 1000 || params.rps * params.durationS > 5000) {
  throw new Error("bounded benchmark: at most 1000 tabs and 5000 requests per run");
}

const tokensPerFrame = Math.max(1, Math.round((params.tokensPerSecond * params.frameMs) / 1000));
console.log(
  `bench:churn seed=${params.seed} tabs=${params.tabs} rps=${params.rps} ` +
    `duration=${params.durationS}s tokens/job=${params.tokensPerJob} ` +
    `token-rate=${params.tokensPerSecond}/s (${tokensPerFrame} tokens every ${params.frameMs} ms) ` +
    `drop-rate=${params.dropRate} (half abrupt, half silent)`,
);
console.log(`coordinator source: ${params.root} (${describeSource(params.root)})`);
console.log(
  `coordinator: wrangler dev on 127.0.0.1, STATUS_INTERVAL_MS=${params.statusIntervalMs} ` +
    `ACCEPT_MS=${params.acceptMs} LEASE_MS=${params.leaseMs} ` +
    `REDISPATCH_WAIT_MS=${params.redispatchWaitMs} ANONYMOUS_TIER=on (RPM/concurrency unlimited); ` +
    `tabs ping every half status interval, dropped tabs rejoin after ${params.rejoinMs} ms; ` +
    `request timeout ${params.requestTimeoutMs} ms`,
);

const results: Array<{ name: string; metrics: RunMetrics; lines: string[] }> = [];
for (const name of runs) {
  const started = Date.now();
  process.stdout.write(`running ${name} (MAX_ATTEMPTS=${ATTEMPTS[name]})… `);
  const run = await runChurn(params, ATTEMPTS[name]!);
  const metrics = measure(run);
  console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  results.push({ name, metrics, lines: details(name, metrics, run) });
}

const baseline = results.find((r) => r.name === "baseline")?.metrics;
console.log("");
printTable(
  TABLE_HEADER,
  results.map((r) => tableRow(r.name, r.metrics, baseline, params.statusIntervalMs)),
);
console.log(
  "\nTargets (issue 4): completion ≥ 99% with failover; detection p95 ≤ 2 status intervals " +
    `(${2 * params.statusIntervalMs} ms); re-dispatch p95 ≤ 1 s for abrupt drops.` +
    "\ncomplete & correct = [DONE] received and the text equals the expected text exactly." +
    "\ndetect = drop → first coordinator reaction a tab sees (replacement's job.assign, job.cancel" +
    " or close at the silent tab); ¹ baseline abrupt: drop → the client's error event." +
    "\nre-dispatch = drop → the replacement tab's job.assign (attempt ≥ 2).\n",
);
for (const r of results) for (const line of r.lines) console.log(line);
