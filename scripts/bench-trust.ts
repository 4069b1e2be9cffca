/**
 * bench:trust — how well verification keeps lying tabs away from clients (docs/trust.md), against
 * the real coordinator: `wrangler dev` on 127.0.0.1 (started here, like bench:churn), Node `ws`
 * tabs speaking the real protocol with signed identities (scripts/trust/trust-tab.ts), 14% of them
 * lying in seven ways (spam, a smaller model, truncation, speed lies, refusals, inflated token
 * counts, made-up logprobs: scripts/trust/tab-lies.ts), honest tabs of three GPU classes with their
 * own re-scoring noise, and open-loop streaming clients that check every answer against the honest
 * one, half of them asking for logprobs. Two runs on fresh coordinators with the same seed, tabs
 * and requests: verification on (TRUST=on, the default rates) and off (TRUST=off, the baseline).
 * Credit is read from what the coordinator tells the tabs (scripts/trust/credit-report.ts).
 *
 * Time is compressed: tabs decode `1 / --time-scale` times faster than the GPU class they stand for
 * (and re-score at that speed), so one simulated minute is 60 × time-scale real seconds. The
 * coordinator's timers are not scaled; none of them gates the trust figures (audits and canaries
 * follow finished jobs, not the clock). A benchmark, not a test: it prints what it measured.
 *
 *   node scripts/sim/run-ts.mjs scripts/bench-trust.ts [--tabs 50] [--malicious 0.14] [--rps 6]
 *        [--duration 150] [--time-scale 0.1] [--stretch 10] [--frame-ms 100] [--prompt-words 20]
 *        [--logprob-share 0.5] [--framers 0] [--seed 1] [--runs on,off|none] [--sim]
 *   --malicious: the share of lying tabs, the kinds in turn (0.14 of 50 = 7, one of each kind).
 *   --logprob-share: the share of client requests asking `logprobs: true, top_logprobs: 2`.
 *   --framers N: N of the honest tabs answer honestly but score every answer they audit as
 *        implausible (they frame honest tabs). --sim adds the in-process simulation's table (its
 *        own flags: --sim-tabs 200 --sim-minutes 30 --sim-seeds 2 --load 0.6, --sim-framers 0
 *        (framers among its tabs), --sim-confirm 1 (0: a decisive audit binds without a second
 *        verifier's re-check)); `--runs none --sim` runs the simulation alone. The simulation has
 *        the five kinds before the count and logprob liars (it models no count or logprob audits,
 *        so they would only be tabs never caught); its own default share is 0.1 unless
 *        --malicious is given (then that share of its tabs, over its five kinds).
 */
import { resolve } from "node:path";
import { numberFlag, percentile, printTable, readFlags } from "./sim/flags.js";
import { runTrust, type TrustRunParams, type TrustRunResult } from "./trust/trust-run.js";
import { MALICIOUS_KINDS, RIGHT_TEXT_KINDS } from "./trust/trust-tab.js";
import { creditRows, takeBackReason } from "./trust/credit-report.js";
import { simSection } from "./trust/sim-section.js";
import { DEFAULT_TRUST, honestBounds } from "../shared/trust/policy.js";

const flags = readFlags(process.argv.slice(2));
const params: TrustRunParams = {
  seed: numberFlag(flags, "seed", 1),
  tabs: numberFlag(flags, "tabs", 50),
  // Each kind gets a tab at 50 tabs (7 kinds: 0.1 left the count and logprob liars out).
  maliciousShare: numberFlag(flags, "malicious", 0.14),
  framers: numberFlag(flags, "framers", 0),
  rps: numberFlag(flags, "rps", 6),
  durationS: numberFlag(flags, "duration", 150),
  timeScale: numberFlag(flags, "time-scale", 0.1),
  frameMs: numberFlag(flags, "frame-ms", 100),
  promptWords: numberFlag(flags, "prompt-words", 20),
  logprobShare: numberFlag(flags, "logprob-share", 0.5),
  requestTimeoutMs: numberFlag(flags, "timeout-ms", 30_000),
  root: resolve(flags.get("root") ?? "."),
};
const stretchMin = numberFlag(flags, "stretch", 10);
// `--runs none` skips the real coordinator (with --sim: the in-process simulation alone).
const runs = flags.get("runs") === "none" ? [] : (flags.get("runs") ?? "on,off").split(",");
if (params.tabs > 300 || params.rps * params.durationS > 4000) {
  throw new Error("bounded benchmark: at most 300 tabs and 4000 requests per run");
}

if (runs.length === 0) {
  if (!flags.has("sim")) throw new Error("--runs none: nothing to run without --sim");
  console.log("In-process simulation of the trust logic (scripts/trust/trust-sim.ts):");
  simSection(flags);
  process.exit(0);
}

const simMinute = 60 * params.timeScale; // real seconds per simulated minute
const toSimMin = (realMs: number) => realMs / 1000 / simMinute;
console.log(
  `bench:trust — real coordinator (wrangler dev, 127.0.0.1), ${params.tabs} Node ws tabs ` +
    `(${(params.maliciousShare * 100).toFixed(0)}% lying: ${MALICIOUS_KINDS.join(", ")}` +
    `${params.framers ? `; ${params.framers} framers` : ""}), ` +
    `${params.rps} requests/s for ${params.durationS} s (${(params.logprobShare * 100).toFixed(0)}% asking logprobs), seed ${params.seed}; ` +
    `one simulated minute = ${simMinute.toFixed(1)} s real (tabs decode ${(1 / params.timeScale).toFixed(0)}× their class speed)`,
);

const results = new Map<string, TrustRunResult>();
for (const name of runs) {
  if (name !== "on" && name !== "off") throw new Error(`--runs: unknown run '${name}'`);
  const started = Date.now();
  process.stdout.write(`running verification ${name}… `);
  try {
    results.set(name, await runTrust(params, name === "on"));
    console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.log(`failed: ${String(e).slice(0, 300)}`);
  }
}

interface Measured {
  /** Client jobs some tab finished (the coordinator delivered the answer). */
  served: number;
  byLiars: number;
  afterJobs: number;
  byLiarsAfter: number;
  /** Answers that differ from the honest one (by the answer-changing liars). */
  wrong: number;
  wrongAfter: number;
  bySpeedLiar: number;
  /** Answers by the count and the logprob liar (their text is right). */
  byFigureLiars: number;
  /** Client requests that asked for logprobs, and of them those whose stream carried entries. */
  askedLogprobs: number;
  withEntries: number;
  /** Client requests whose stream did not end with [DONE] in time, and of those, done anyway. */
  notEnded: number;
  notEndedButDone: number;
  quarantine: Map<string, { times: number[]; total: number; served: number }>;
  honestTabs: number;
  honestQuarantined: number;
  /** Framers (honest answers, lying audits): how many, audits they answered, quarantined. */
  framers: number;
  framerAudits: number;
  framersQuarantined: number;
  clientTokens: number;
  auditTokens: number;
  canaryTokens: number;
  /** The same after the first stretch (steady state: most honest tabs left probation). */
  clientTokensAfter: number;
  checkTokensAfter: number;
  audits: number;
  canaries: number;
  reasons: string[];
}

/**
 * Counted where the answer was made: each tab records the jobs it finished (the bench knows the
 * canary prompts, the tabs do not), so an answer counts as served even when the client's stream
 * did not end in time (counted apart, `notEndedButDone`).
 */
function measure(r: TrustRunResult): Measured {
  const stretchMs = stretchMin * simMinute * 1000;
  const byId = new Map<string, boolean>();
  const m: Measured = {
    served: 0,
    byLiars: 0,
    afterJobs: 0,
    byLiarsAfter: 0,
    wrong: 0,
    wrongAfter: 0,
    bySpeedLiar: 0,
    byFigureLiars: 0,
    askedLogprobs: 0,
    withEntries: 0,
    notEnded: 0,
    notEndedButDone: 0,
    quarantine: new Map(),
    honestTabs: 0,
    honestQuarantined: 0,
    framers: 0,
    framerAudits: 0,
    framersQuarantined: 0,
    clientTokens: 0,
    auditTokens: 0,
    canaryTokens: 0,
    clientTokensAfter: 0,
    checkTokensAfter: 0,
    audits: 0,
    canaries: 0,
    reasons: [],
  };
  for (const t of r.tabs) {
    m.audits += t.out.audits.length;
    for (const a of t.out.audits) {
      m.auditTokens += a.tokens;
      if (a.at - r.t0 >= stretchMs) m.checkTokensAfter += a.tokens;
    }
    let servedClients = 0;
    for (const [jobId, f] of t.out.finished) {
      const after = f.at - r.t0 >= stretchMs;
      if (f.canary) {
        m.canaries++;
        m.canaryTokens += f.tokens;
        if (after) m.checkTokensAfter += f.tokens;
        continue;
      }
      byId.set(jobId, true);
      servedClients++;
      m.served++;
      m.clientTokens += f.tokens;
      if (after) {
        m.afterJobs++;
        m.clientTokensAfter += f.tokens;
      }
      // A framer's own answers are right: it lies only as a verifier.
      if (t.kind === "honest" || t.kind === "framer") continue;
      m.byLiars++;
      if (after) m.byLiarsAfter++;
      if (t.kind === "speed-lie") m.bySpeedLiar++;
      else if (RIGHT_TEXT_KINDS.has(t.kind)) m.byFigureLiars++;
      else {
        m.wrong++;
        if (after) m.wrongAfter++;
      }
    }
    if (t.kind === "honest") {
      m.honestTabs++;
      if (t.out.quarantinedAt !== null) m.honestQuarantined++;
      continue;
    }
    if (t.kind === "framer") {
      m.framers++;
      m.framerAudits += t.out.audits.length;
      if (t.out.quarantinedAt !== null) m.framersQuarantined++;
      continue;
    }
    const q = m.quarantine.get(t.kind) ?? { times: [], total: 0, served: 0 };
    q.total++;
    if (servedClients > 0) q.served++;
    if (t.out.quarantinedAt !== null) {
      q.times.push(toSimMin(t.out.quarantinedAt - r.t0));
      if (t.out.reason) m.reasons.push(`${t.kind}: ${t.out.reason}`);
    }
    m.quarantine.set(t.kind, q);
  }
  for (const j of r.jobs) {
    if (j.logprobs) {
      m.askedLogprobs++;
      if (j.result.logprobEntries > 0) m.withEntries++;
    }
    if (j.result.outcome === "done") continue;
    m.notEnded++;
    if (j.result.jobId && byId.has(j.result.jobId)) m.notEndedButDone++;
  }
  return m;
}

const pct = (x: number, n: number) => (n ? `${((100 * x) / n).toFixed(2)}%` : "—");
const ratio = (a: number, b: number) => (b ? (a / b).toFixed(3) : "—");
const on = results.get("on") ? measure(results.get("on")!) : null;
const off = results.get("off") ? measure(results.get("off")!) : null;
const cell = (m: Measured | null, f: (m: Measured) => string) => (m ? f(m) : "not run");
const share = (m: Measured | null, num: (m: Measured) => number, den: (m: Measured) => number) =>
  m && den(m) ? num(m) / den(m) : 0;

const rows: string[][] = [
  [
    "client answers served by lying tabs, whole run",
    cell(on, (m) => pct(m.byLiars, m.served)),
    cell(off, (m) => pct(m.byLiars, m.served)),
    ratio(
      share(
        on,
        (m) => m.byLiars,
        (m) => m.served,
      ),
      share(
        off,
        (m) => m.byLiars,
        (m) => m.served,
      ),
    ),
  ],
  [
    `client answers served by lying tabs, after minute ${stretchMin}`,
    cell(on, (m) => pct(m.byLiarsAfter, m.afterJobs)),
    cell(off, (m) => pct(m.byLiarsAfter, m.afterJobs)),
    ratio(
      share(
        on,
        (m) => m.byLiarsAfter,
        (m) => m.afterJobs,
      ),
      share(
        off,
        (m) => m.byLiarsAfter,
        (m) => m.afterJobs,
      ),
    ),
  ],
  [
    "client answers wrong (≠ the honest answer), whole run",
    cell(on, (m) => pct(m.wrong, m.served)),
    cell(off, (m) => pct(m.wrong, m.served)),
    ratio(
      share(
        on,
        (m) => m.wrong,
        (m) => m.served,
      ),
      share(
        off,
        (m) => m.wrong,
        (m) => m.served,
      ),
    ),
  ],
  [
    `client answers wrong, after minute ${stretchMin}`,
    cell(on, (m) => pct(m.wrongAfter, m.afterJobs)),
    cell(off, (m) => pct(m.wrongAfter, m.afterJobs)),
    "—",
  ],
  [
    "client answers by the speed liar (answers right)",
    cell(on, (m) => pct(m.bySpeedLiar, m.served)),
    cell(off, (m) => pct(m.bySpeedLiar, m.served)),
    "—",
  ],
  [
    "client answers by the count and logprob liars (text right)",
    cell(on, (m) => pct(m.byFigureLiars, m.served)),
    cell(off, (m) => pct(m.byFigureLiars, m.served)),
    "—",
  ],
  [
    "client requests asking for logprobs (of them, streamed entries)",
    cell(on, (m) => `${m.askedLogprobs} (${m.withEntries})`),
    cell(off, (m) => `${m.askedLogprobs} (${m.withEntries})`),
    "—",
  ],
];
for (const kind of MALICIOUS_KINDS) {
  const q = (m: Measured) => m.quarantine.get(kind) ?? { times: [], total: 0, served: 0 };
  const fmt = (m: Measured) => {
    const { times, total, served } = q(m);
    return times.length
      ? `${percentile(times, 50).toFixed(1)} / ${percentile(times, 95).toFixed(1)}; ${times.length} of ${total} (${served} served)`
      : `none; 0 of ${total} (${served} served)`;
  };
  rows.push([`time to quarantine: ${kind} (p50 / p95, min)`, cell(on, fmt), cell(off, fmt), "—"]);
}
rows.push([
  "honest tabs wrongly quarantined",
  cell(on, (m) => `${m.honestQuarantined} of ${m.honestTabs}`),
  cell(off, (m) => `${m.honestQuarantined} of ${m.honestTabs}`),
  "—",
]);
if (params.framers > 0)
  rows.push([
    "framers: audits they answered / framers quarantined",
    cell(on, (m) => `${m.framerAudits} / ${m.framersQuarantined} of ${m.framers}`),
    cell(off, (m) => `${m.framerAudits} / ${m.framersQuarantined} of ${m.framers}`),
    "—",
  ]);
for (const row of creditRows(
  [results.get("on") ?? null, results.get("off") ?? null],
  stretchMin * simMinute * 1000,
  stretchMin,
))
  rows.push([...row, "—"]);
rows.push([
  "audit + canary overhead, share of client tokens",
  cell(on, (m) => pct(m.auditTokens + m.canaryTokens, m.clientTokens)),
  cell(off, (m) => pct(m.auditTokens + m.canaryTokens, m.clientTokens)),
  "—",
]);
rows.push([
  `audit + canary overhead, after minute ${stretchMin}`,
  cell(on, (m) => pct(m.checkTokensAfter, m.clientTokensAfter)),
  cell(off, (m) => pct(m.checkTokensAfter, m.clientTokensAfter)),
  "—",
]);
rows.push([
  "audits / canaries / client answers made",
  cell(on, (m) => `${m.audits} / ${m.canaries} / ${m.served}`),
  cell(off, (m) => `${m.audits} / ${m.canaries} / ${m.served}`),
  "—",
]);
rows.push([
  "client streams not ended in time (of which the job was done)",
  cell(on, (m) => `${m.notEnded} (${m.notEndedButDone})`),
  cell(off, (m) => `${m.notEnded} (${m.notEndedButDone})`),
  "—",
]);
console.log("");
printTable(["measure", "verification on", "off (baseline)", "on / off"], rows);
const b = honestBounds(DEFAULT_TRUST);
console.log(
  `Times are simulated minutes from the start of the client load (one = ${simMinute.toFixed(1)} s real); ` +
    `"served" = liars of that kind that got at least one client job. ` +
    `The test is built for α = ${DEFAULT_TRUST.alpha} false alarms per check (split over its evidence streams; honest bounds ` +
    `${(100 * b.token).toFixed(2)}% tokens, ${(100 * b.stop).toFixed(1)}% stops, ${(100 * b.canary).toFixed(1)}% canaries, ` +
    `${(100 * b.count).toFixed(1)}% counts, ${(100 * b.logprob).toFixed(1)}% logprob entries). ` +
    `Credit is what the coordinator told the tabs (job.credit, credit.balance); "worth" re-prices each credited job at its true token count.`,
);
for (const reason of on?.reasons ?? []) console.log(`  quarantined — ${reason}`);
const takeBack = takeBackReason(results.get("on") ?? null);
if (takeBack) console.log(`  count liar's latest take-back — ${takeBack}`);
for (const [name, r] of results) {
  const why = new Map<string, number>();
  for (const j of r.jobs) {
    if (j.result.outcome === "done") continue;
    const key = `${j.result.outcome} ${j.result.status} ${(j.result.error ?? "").slice(0, 120)}`;
    why.set(key, (why.get(key) ?? 0) + 1);
  }
  for (const [key, n] of [...why].sort((a, b) => b[1] - a[1]).slice(0, 5))
    console.log(`  failed requests (verification ${name}): ${n} × ${key}`);
  const logs = [...r.logCounts].filter(
    ([k]) => !k.startsWith("info: job ") && !k.includes("request"),
  );
  console.log(
    `  coordinator log (verification ${name}): ` +
      logs
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([k, n]) => `${n} × ${k}`)
        .join("; "),
  );
}

if (flags.has("sim")) {
  console.log("\nIn-process simulation of the same trust logic (scripts/trust/trust-sim.ts):");
  simSection(flags);
}
