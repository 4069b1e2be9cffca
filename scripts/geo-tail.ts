/**
 * Where bench:geo's tail comes from: the same world and arrivals as bench:geo's load part, served
 * by Tabgrid's policy and the oracle, then the slowest 5% of each broken down (prompt size, the
 * GPU class that served it, time waiting behind a job or in the line). A diagnostic, not a
 * benchmark: it prints no targets.
 *
 *   node scripts/sim/run-ts.mjs scripts/geo-tail.ts [--seed 1] [--requests 8000] [--loads 0.7,0.95]
 *        [--base '{"spareFastFromPrefill":900}'] [--variants '[{"name":"…", …}]'] [--detail false]
 */
import { createRng } from "../shared/scheduling/prng.js";
import { numberFlag, numberList, percentile, printTable, readFlags } from "./sim/flags.js";
import { oraclePolicy, tabgridPolicy, type Policy } from "./sim/policies.js";
import type { ScoreBreakdown } from "../shared/scheduling/score.js";
import { makeTabs, poissonArrivals, trueNetworkMs, type SimRequest } from "./sim/population.js";
import { newTruth, simulate, type RequestOutcome } from "./sim/simulate.js";
import { loadWorld } from "./sim/world.js";

const flags = readFlags(process.argv.slice(2));
const seed = numberFlag(flags, "seed", 1);
const tabCount = numberFlag(flags, "tabs", 2000);
const requestCount = numberFlag(flags, "requests", 8000);
const loads = numberList(flags, "loads", [0.7, 0.95]);
const WARMUP_SHARE = 0.1;
/** Scheduler option variants to compare, as JSON: [{"name": "…", "idlePreference": 1.1}, …]. */
const variants = JSON.parse(flags.get("variants") ?? "[]") as Array<
  { name: string } & Parameters<typeof tabgridPolicy>[1]
>;
const detail = flags.get("detail") !== "false";
/** Scheduler options for the detailed "tabgrid" run, as JSON (default: the defaults). */
const base = JSON.parse(flags.get("base") ?? "{}") as Parameters<typeof tabgridPolicy>[1];

const world = loadWorld();
const tabs = makeTabs(world, createRng(seed), tabCount);

/** Marks the requests a policy kept in its waiting line, and the tab each was put on at arrival. */
function watched(
  policy: Policy,
  lined: Set<SimRequest>,
  firstTab: Map<SimRequest, number>,
): Policy {
  return {
    name: policy.name,
    choose(req, now) {
      const i = policy.choose(req, now);
      if (i < 0) lined.add(req);
      else firstTab.set(req, i);
      return i;
    },
    assigned: (i, req, now) => policy.assigned(i, req, now),
    finished: (i, job, now) => policy.finished(i, job, now),
  };
}

const ms = (v: number) => `${Math.round(v)} ms`;
const pct = (v: number) => `${Math.round(v * 100)}%`;
const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);

for (const load of loads) {
  const requests = poissonArrivals(world, tabs, seed, load, requestCount);
  const truth = newTruth(tabs.length);
  const runs: Array<{ name: string; out: RequestOutcome[]; lined: Set<SimRequest> }> = [];
  /** The estimate Tabgrid's own policy placed each request on at arrival. */
  const estimates = new Map<SimRequest, ScoreBreakdown>();
  const firstTab = new Map<SimRequest, number>();
  const policies = [
    oraclePolicy(tabs, truth),
    tabgridPolicy(tabs, { ...base, onChoice: (req, e) => estimates.set(req, e) }),
    ...variants.map((v) => tabgridPolicy(tabs, v)),
  ];
  for (const policy of policies) {
    const started = Date.now();
    const lined = new Set<SimRequest>();
    const out = simulate(
      watched(policy, lined, policy.name === "tabgrid" ? firstTab : new Map()),
      tabs,
      requests,
      truth,
    );
    runs.push({ name: policy.name, out: out.slice(Math.floor(out.length * WARMUP_SHARE)), lined });
    const r = runs[runs.length - 1]!;
    const oracle = runs.find((x) => x.name === "oracle");
    const p95 = percentile(
      r.out.map((o) => o.ttftMs),
      95,
    );
    const o95 = oracle
      ? percentile(
          oracle.out.map((o) => o.ttftMs),
          95,
        )
      : NaN;
    console.log(
      `${Math.round(load * 100)}% ${policy.name}: p50 ${ms(
        percentile(
          r.out.map((o) => o.ttftMs),
          50,
        ),
      )} p95 ${ms(p95)} (${(p95 / o95).toFixed(3)}× oracle) in line ${pct(r.lined.size / requests.length)} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  }
  if (!detail) continue;
  const rows: string[][] = [];
  const ours = runs[1]!;
  for (const { name, out, lined } of runs.slice(0, 2)) {
    const p95 = percentile(
      out.map((o) => o.ttftMs),
      95,
    );
    const tail = out.filter((o) => o.ttftMs >= p95);
    for (const [label, set] of [
      ["all", out],
      ["slowest 5%", tail],
    ] as const) {
      const gpu = (g: string) => set.filter((o) => tabs[o.tab]!.gpu === g).length / set.length;
      rows.push([
        `${Math.round(load * 100)}%`,
        name,
        label,
        ms(
          percentile(
            set.map((o) => o.ttftMs),
            label === "all" ? 95 : 50,
          ),
        ),
        String(Math.round(mean(set.map((o) => o.req.promptTokens)))),
        `${pct(gpu("integrated"))}/${pct(gpu("mid"))}/${pct(gpu("high"))}`,
        pct(set.filter((o) => o.queueWaitMs > 0).length / set.length),
        ms(mean(set.map((o) => o.queueWaitMs))),
        pct(set.filter((o) => lined.has(o.req)).length / set.length),
      ]);
    }
  }
  // By prompt size: where in the mix the two policies differ.
  const sizes = [0, 300, 1000, 2000, Infinity];
  for (let b = 0; b + 1 < sizes.length; b++) {
    const inBucket = (o: RequestOutcome) =>
      o.req.promptTokens >= sizes[b]! && o.req.promptTokens < sizes[b + 1]!;
    rows.push([
      `${Math.round(load * 100)}%`,
      "both",
      `prompt ${sizes[b]}–${sizes[b + 1]}`,
      runs
        .slice(0, 2)
        .map((r) =>
          ms(
            percentile(
              r.out.filter(inBucket).map((o) => o.ttftMs),
              95,
            ),
          ),
        )
        .join(" / "),
      String(ours.out.filter(inBucket).length),
      runs
        .slice(0, 2)
        .map((r) => {
          const s = r.out.filter(inBucket);
          const g = (x: string) => s.filter((o) => tabs[o.tab]!.gpu === x).length / s.length;
          return `${pct(g("integrated"))}/${pct(g("mid"))}/${pct(g("high"))}`;
        })
        .join(" vs "),
      runs
        .slice(0, 2)
        .map((r) =>
          pct(
            r.out.filter((o) => inBucket(o) && o.queueWaitMs > 0).length /
              r.out.filter(inBucket).length,
          ),
        )
        .join(" / "),
      runs
        .slice(0, 2)
        .map((r) => ms(mean(r.out.filter(inBucket).map((o) => o.queueWaitMs))))
        .join(" / "),
      pct(
        ours.out.filter((o) => inBucket(o) && ours.lined.has(o.req)).length /
          ours.out.filter(inBucket).length,
      ),
    ]);
  }
  // Tabgrid's estimate at arrival against what happened, for its tail and for all requests.
  const errRows: string[][] = [];
  const ours95 = percentile(
    ours.out.map((o) => o.ttftMs),
    95,
  );
  const sets: Array<[string, RequestOutcome[]]> = [
    ["all", ours.out],
    ["slowest 5%", ours.out.filter((o) => o.ttftMs >= ours95)],
    [
      "slowest 5%, 2000+ tokens",
      ours.out.filter((o) => o.ttftMs >= ours95 && o.req.promptTokens >= 2000),
    ],
    ["2000+ tokens", ours.out.filter((o) => o.req.promptTokens >= 2000)],
  ];
  for (const [label, set] of sets) {
    const placed = set.filter((o) => estimates.has(o.req) && firstTab.get(o.req) === o.tab);
    const truePrefill = (o: RequestOutcome) =>
      o.ttftMs - o.queueWaitMs - trueNetworkMs(o.req, tabs[o.tab]!);
    const est = (f: (e: ScoreBreakdown) => number) =>
      ms(mean(placed.map((o) => f(estimates.get(o.req)!))));
    errRows.push([
      `${Math.round(load * 100)}%`,
      label,
      String(set.length),
      pct(
        set.filter((o) => firstTab.has(o.req) && firstTab.get(o.req) !== o.tab).length / set.length,
      ),
      pct(placed.filter((o) => estimates.get(o.req)!.queueMs > 0).length / placed.length),
      `${est((e) => e.ttftMs)} / ${ms(mean(placed.map((o) => o.ttftMs)))}`,
      `${est((e) => e.queueMs)} / ${ms(mean(placed.map((o) => o.queueWaitMs)))}`,
      `${est((e) => e.prefillMs)} / ${ms(mean(placed.map(truePrefill)))}`,
      `${est((e) => e.networkMs)} / ${ms(mean(placed.map((o) => trueNetworkMs(o.req, tabs[o.tab]!))))}`,
    ]);
  }
  // The tail by what happened to it: moved to a tab that freed (to which class), or kept where
  // it was placed (behind a job, or on an idle tab).
  const tailRows: string[][] = [];
  const tail = sets[1]![1];
  const groups: Array<[string, (o: RequestOutcome) => boolean]> = [
    ["moved to high", (o) => firstTab.get(o.req) !== o.tab && tabs[o.tab]!.gpu === "high"],
    ["moved to mid", (o) => firstTab.get(o.req) !== o.tab && tabs[o.tab]!.gpu === "mid"],
    ["kept, queued", (o) => firstTab.get(o.req) === o.tab && estimates.get(o.req)!.queueMs > 0],
    [
      "kept, idle, high",
      (o) =>
        firstTab.get(o.req) === o.tab &&
        estimates.get(o.req)!.queueMs === 0 &&
        tabs[o.tab]!.gpu === "high",
    ],
    [
      "kept, idle, mid",
      (o) =>
        firstTab.get(o.req) === o.tab &&
        estimates.get(o.req)!.queueMs === 0 &&
        tabs[o.tab]!.gpu === "mid",
    ],
  ];
  for (const [label, pick] of groups) {
    const g = tail.filter((o) => firstTab.has(o.req) && pick(o));
    tailRows.push([
      label,
      pct(g.length / tail.length),
      String(Math.round(mean(g.map((o) => o.req.promptTokens)))),
      ms(mean(g.map((o) => o.ttftMs))),
      ms(mean(g.map((o) => o.queueWaitMs))),
      ms(mean(g.map((o) => o.ttftMs - o.queueWaitMs - trueNetworkMs(o.req, tabs[o.tab]!)))),
      String(Math.round(mean(g.map((o) => tabs[o.tab]!.truePrefill)))),
      ms(mean(g.map((o) => estimates.get(o.req)?.ttftMs ?? NaN))),
    ]);
  }
  printTable(
    [
      "tabgrid tail",
      "share",
      "prompt",
      "TTFT",
      "wait",
      "prefill",
      "tab prefill tok/s",
      "est at arrival",
    ],
    tailRows,
  );
  printTable(
    [
      "load",
      "tabgrid requests",
      "n",
      "moved later",
      "placed queued",
      "TTFT est / true",
      "wait est / true",
      "prefill est / true",
      "network est / true",
    ],
    errRows,
  );
  printTable(
    [
      "load",
      "policy",
      "requests",
      "TTFT p95 (tail: p50)",
      "mean prompt",
      "int/mid/high",
      "waited",
      "wait mean",
      "in line",
    ],
    rows,
  );
}
