/**
 * npm run bench — every benchmark in one go, each with a short preset and a time limit, then one
 * summary table (metric, Tabgrid, baseline, ratio, target, met) read from what each benchmark
 * printed. Each benchmark's whole output is kept in node_modules/.cache/bench-all/<name>.log; the
 * figures in the summary are copied from those outputs, never computed here from anything else.
 *
 *   node scripts/sim/run-ts.mjs scripts/bench-all.ts [--only geo,match] [--skip p2p]
 *        [--from-logs]   (summarise the logs of the last run again, without running anything)
 *
 * The short presets trade precision for time (the whole run is meant to stay under ~10 minutes on
 * a 2-core machine); each benchmark's own docs give its full-size figures.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { printTable, readFlags } from "./sim/flags.js";

type Row = [
  metric: string,
  tabgrid: string,
  baseline: string,
  ratio: string,
  target: string,
  met: string,
];
type Table = Array<Record<string, string>>;

interface Bench {
  name: string;
  /** The command, as package.json's script runs it, with the short preset. */
  command: string[];
  timeoutMs: number;
  summarise(output: string): Row[];
}

const TS = ["node", "scripts/sim/run-ts.mjs"];

const BENCHES: Bench[] = [
  {
    name: "match",
    command: [
      ...TS,
      "scripts/bench-match.ts",
      "--seed",
      "1",
      "--sizes",
      "1000,100000",
      "--requests",
      "300",
      "--repeats",
      "1",
    ],
    timeoutMs: 120_000,
    summarise(out) {
      const table = tables(out).find((t) => t[0]?.["linear p99"] !== undefined) ?? [];
      const last = table[table.length - 1];
      return targetLines(out).map(([metric, value, met]) =>
        metric.startsWith("p99 ≤")
          ? [
              `bench:match index ${metric.split(" ≤")[0]} at ${last?.["tabs"] ?? "?"} tabs`,
              value,
              `linear scan ${last?.["linear p99"] ?? "?"}`,
              ratioOf(value, last?.["linear p99"]),
              metric.replace(/^p99 /, ""),
              met,
            ]
          : [`bench:match ${metric}`, value, "—", "—", metric.replace(/^.* ≤/, "≤"), met],
      );
    },
  },
  {
    name: "geo",
    command: [
      ...TS,
      "scripts/bench-geo.ts",
      "--seed",
      "1",
      "--requests",
      "6000",
      "--conversations",
      "500",
      "--hedging-requests",
      "6000",
    ],
    timeoutMs: 300_000,
    summarise(out) {
      const rows: Row[] = [];
      const all = tables(out);
      const loads =
        all.find(
          (t) =>
            t[0]?.["TTFT p95"] !== undefined && t[0]?.["policy"] !== undefined && t[0]?.["load"],
        ) ?? [];
      for (const r of loads.filter(
        (r) => r["policy"] === "oracle" || r["policy"] === "least-loaded",
      )) {
        const ours = loads.find((x) => x["load"] === r["load"] && x["policy"] === "tabgrid");
        rows.push([
          `bench:geo TTFT p95 at ${r["load"]} load vs ${r["policy"]}`,
          ours?.["TTFT p95"] ?? "?",
          r["TTFT p95"]!,
          r["tabgrid p95 ÷ this p95"]!,
          (r["target"] ?? "").split(":")[0]!,
          verdict(r["target"]),
        ]);
      }
      const conv = all.find((t) => t[0]?.["turn ≥ 2 TTFT p95"] !== undefined) ?? [];
      for (const r of conv.filter((r) => r["policy"] === "tabgrid, no affinity")) {
        const ours = conv.find((x) => x["load"] === r["load"] && x["policy"] === "tabgrid");
        rows.push([
          `bench:geo follow-up turns TTFT p95 at ${r["load"]}, affinity vs none`,
          ours?.["turn ≥ 2 TTFT p95"] ?? "?",
          r["turn ≥ 2 TTFT p95"]!,
          r["tabgrid p95 ÷ this p95"]!,
          (r["target"] ?? "").split(":")[0]!,
          verdict(r["target"]),
        ]);
      }
      const hedge = all.find((t) => t[0]?.["p99 ÷ p50"] !== undefined) ?? [];
      const plain = hedge.find((r) => r["policy"]?.includes("no hedging"));
      const hedged = hedge.find((r) => r["policy"] === "tabgrid, hedged");
      if (plain && hedged) {
        const tail = Number.parseFloat(hedged["p99 ÷ p50"]!);
        const extra = Number.parseFloat(hedged["extra prefill"]!);
        rows.push([
          "bench:geo hedging (churn + heterogeneity) TTFT p99 ÷ p50",
          hedged["p99 ÷ p50"]!,
          `${plain["p99 ÷ p50"]} unhedged`,
          ratioOf(hedged["TTFT p99"], plain["TTFT p99"]) + " (p99)",
          "≤ 1.5×",
          tail <= 1.5 ? "yes" : "no",
        ]);
        rows.push([
          "bench:geo hedging extra prefill work",
          hedged["extra prefill"]!,
          "0% unhedged",
          "—",
          "≤ 15%",
          extra <= 15 ? "yes" : "no",
        ]);
      }
      return rows;
    },
  },
  {
    name: "churn",
    command: [
      ...TS,
      "scripts/bench-churn.ts",
      "--seed",
      "1",
      "--tabs",
      "20",
      "--rps",
      "6",
      "--duration",
      "12",
    ],
    timeoutMs: 240_000,
    summarise(out) {
      const t =
        tables(out).find(
          (t) => t[0]?.["run"] !== undefined && t[0]?.["completion"] !== undefined,
        ) ?? [];
      const on = t.find((r) => r["run"] === "failover");
      const off = t.find((r) => r["run"] === "baseline");
      if (!on) return [];
      return [
        [
          "bench:churn completion with failover",
          on["completion"]!,
          off?.["completion"] ?? "—",
          on["vs baseline"] ?? "—",
          "≥ 99%",
          on["≥ 99%"] ?? "?",
        ],
        [
          "bench:churn drop detection p95 ÷ status interval",
          on["detect p95 / interval"]!,
          "—",
          "—",
          "≤ 2 intervals",
          on["≤ 2 intervals"] ?? "?",
        ],
        [
          "bench:churn re-dispatch abrupt p50/p95 ms",
          on["re-dispatch abrupt p50/p95 ms"]!,
          "—",
          "—",
          "p95 ≤ 1 s",
          on["≤ 1 s"] ?? "?",
        ],
      ];
    },
  },
  {
    name: "overhead",
    command: ["node", "scripts/sim/run-ts.mjs", "scripts/bench-overhead.ts", "--quick"],
    timeoutMs: 300_000,
    summarise(out) {
      const t =
        tables(out).find((t) => t[0]?.["metric"] !== undefined && t[0]?.["met"] !== undefined) ??
        [];
      return t
        .filter((r) => r["target"])
        .map((r) => [
          `bench:overhead ${r["metric"]}`,
          r["Tabgrid"]!,
          r["baseline"]!,
          r["ratio"]!,
          r["target"]!,
          r["met"]!,
        ]);
    },
  },
  {
    name: "trust",
    command: [
      ...TS,
      "scripts/bench-trust.ts",
      "--seed",
      "1",
      "--tabs",
      "16",
      "--rps",
      "4",
      "--duration",
      "30",
    ],
    timeoutMs: 300_000,
    summarise(out) {
      const t = tables(out).find((t) => t[0]?.["verification on"] !== undefined) ?? [];
      return t
        .filter((r) => r["verification on"] !== "—")
        .slice(0, 4)
        .map((r) => [
          `bench:trust ${r["measure"]}`,
          r["verification on"]!,
          r["off (baseline)"]!,
          r["on / off"]!,
          "—",
          "—",
        ]);
    },
  },
  {
    name: "abuse",
    command: [
      ...TS,
      "scripts/bench-abuse.ts",
      "--seed",
      "1",
      "--requests",
      "8",
      "--phases",
      "quiet,tab-flood,unauth-flood",
    ],
    timeoutMs: 240_000,
    summarise(out) {
      const t = tables(out).find((t) => t[0]?.["phase"] !== undefined) ?? [];
      const quiet = t.find((r) => r["phase"] === "quiet");
      return t
        .filter((r) => r["phase"] !== "quiet" && r["phase"] !== "quiet-again")
        .map((r) => {
          const ratio = Number.parseFloat(r["p95 / quiet p95"]!);
          return [
            `bench:abuse client p95 during ${r["phase"]}`,
            `${r["p95 ms"]} ms`,
            `${quiet?.["p95 ms"] ?? "?"} ms quiet`,
            `${r["p95 / quiet p95"]}×`,
            "≤ 1.2×",
            ratio <= 1.2 ? "yes" : "no",
          ] as Row;
        });
    },
  },
  {
    name: "p2p",
    command: ["npm", "run", "--silent", "bench:p2p", "--", "--jobs", "4", "--words", "60"],
    timeoutMs: 180_000,
    summarise(out) {
      const t = tables(out).find((t) => t[0]?.["path"] !== undefined) ?? [];
      const direct = t.find((r) => r["path"] === "p2p job: data channel");
      const relay = t.find((r) => r["path"] === "relay-only job (baseline)");
      const same = t.find((r) => r["path"] === "p2p job: relay (same job)");
      if (!direct) return [];
      return [
        [
          "bench:p2p TTFT p50 ms, data channel",
          direct["TTFT p50"]!,
          `${relay?.["TTFT p50"] ?? "?"} relay-only`,
          ratioOf(direct["TTFT p50"], relay?.["TTFT p50"]),
          "—",
          "—",
        ],
        [
          "bench:p2p per-token delay p95 ms, data channel",
          direct["delay p95"]!,
          `${same?.["delay p95"] ?? "?"} relay`,
          "—",
          "—",
          "—",
        ],
      ];
    },
  },
];

/** Every markdown table in the output, as rows keyed by the header's cells. */
function tables(out: string): Table[] {
  const result: Table[] = [];
  let header: string[] | null = null;
  let rows: Table = [];
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, "")
      .split("|")
      .map((c) => c.trim());
  for (const line of out.split("\n")) {
    if (!line.trim().startsWith("|")) {
      if (header) result.push(rows);
      header = null;
      continue;
    }
    if (/^\|[\s|:-]+\|$/.test(line.trim())) continue; // the separator row
    if (!header) {
      header = cells(line);
      rows = [];
      continue;
    }
    const c = cells(line);
    rows.push(Object.fromEntries(header.map((h, i) => [h, c[i] ?? ""])));
  }
  if (header) result.push(rows);
  return result;
}

/** "target X: value — met" lines. */
function targetLines(out: string): Array<[string, string, string]> {
  return [...out.matchAll(/^target (.+): (.+) — (met|NOT met)$/gm)].map((m) => [
    m[1]!,
    m[2]!,
    m[3] === "met" ? "yes" : "no",
  ]);
}

function verdict(cell: string | undefined): string {
  if (!cell) return "—";
  return cell.includes("NOT met") ? "no" : cell.includes("met") ? "yes" : "—";
}

function ratioOf(a: string | undefined, b: string | undefined): string {
  const x = a ? Number.parseFloat(a) : NaN;
  const y = b ? Number.parseFloat(b) : NaN;
  return Number.isFinite(x) && Number.isFinite(y) && y > 0 ? `${(x / y).toFixed(2)}×` : "—";
}

function run(
  bench: Bench,
  logPath: string,
): Promise<{ output: string; code: number | null; timedOut: boolean; ms: number }> {
  return new Promise((done) => {
    const started = Date.now();
    const child = spawn(bench.command[0]!, bench.command.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group, so a time-out ends wrangler dev and workerd too
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        /* already gone */
      }
    }, bench.timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      writeFileSync(logPath, output);
      done({ output, code, timedOut, ms: Date.now() - started });
    });
  });
}

const flags = readFlags(process.argv.slice(2));
const only = flags.get("only")?.split(",");
const skip = new Set(flags.get("skip")?.split(",") ?? []);
const logDir = resolve("node_modules/.cache/bench-all");
mkdirSync(logDir, { recursive: true });
const started = Date.now();
console.log(
  `npm run bench — ${new Date().toISOString()}, ${cpus()[0]?.model ?? "?"} × ${cpus().length}, ` +
    `Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
);

const summary: Row[] = [];
const notes: string[] = [];
for (const bench of BENCHES) {
  if ((only && !only.includes(bench.name)) || skip.has(bench.name)) {
    notes.push(`bench:${bench.name}: skipped (--only/--skip)`);
    continue;
  }
  const logPath = resolve(logDir, `${bench.name}.log`);
  process.stdout.write(`bench:${bench.name} (${bench.command.slice(0, 4).join(" ")} …)… `);
  const r = flags.has("from-logs")
    ? { output: readFileSync(logPath, "utf8"), code: 0, timedOut: false, ms: 0 }
    : await run(bench, logPath);
  const rows = r.timedOut ? [] : bench.summarise(r.output);
  console.log(
    `${(r.ms / 1000).toFixed(1)} s, exit ${r.code}${r.timedOut ? " (time limit)" : ""}, ${rows.length} rows; log ${logPath}`,
  );
  if (rows.length === 0) {
    const why = r.timedOut
      ? `ran past its ${bench.timeoutMs / 1000} s limit`
      : `printed no figures (exit ${r.code}): ${lastLine(r.output)}`;
    summary.push([`bench:${bench.name}`, "skipped", "—", "—", "—", "—"]);
    notes.push(`bench:${bench.name}: skipped — ${why}`);
  }
  summary.push(...rows.map((r) => [...r.slice(0, 5), normalise(r[5])] as Row));
}

console.log("");
printTable(["metric", "Tabgrid", "baseline", "ratio", "target", "met"], summary);
for (const n of notes) console.log(n);
const judged = summary.filter(
  (r) => r[5] === "yes" || r[5] === "no" || r[5] === "met" || r[5] === "NOT met",
);
console.log(
  `targets: ${judged.filter((r) => r[5] === "yes" || r[5] === "met").length}/${judged.length} met; ` +
    `ran in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);

/** The line that says what went wrong: the first error line, else the last line printed. */
function lastLine(out: string): string {
  const lines = out
    .trim()
    .split("\n")
    .filter((l) => l.trim());
  const error =
    lines.find((l) => /^\s*\w*Error: /.test(l)) ??
    lines.find((l) => /Error\b|error:/.test(l) && !l.trim().startsWith("at "));
  return (error ?? lines[lines.length - 1] ?? "no output").trim().slice(0, 240);
}

/** Benchmarks print met, yes, NO, …; the summary says yes, no or —. */
function normalise(met: string): string {
  const m = met.trim().toLowerCase();
  if (m === "yes" || m === "met") return "yes";
  if (m === "no" || m === "not met") return "no";
  return "—";
}
