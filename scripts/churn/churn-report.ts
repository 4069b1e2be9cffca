import { percentile } from "../sim/flags.js";
import type { RunResult } from "./churn-run.js";
import type { DropKind } from "./plan.js";

/** The numbers of one run, derived from what clients and tabs observed. */
export interface RunMetrics {
  maxAttempts: number;
  requests: number;
  correct: number;
  /** Answers that ended with [DONE] but differ from the expected text (gap, repeat, corruption). */
  wrongText: number;
  outcomes: Map<string, number>;
  drops: Record<DropKind, number>;
  droppedCorrect: number;
  /** Drop → coordinator acted (replacement's job.assign, or job.cancel / close at a silent tab). */
  detectMs: Record<DropKind, number[]>;
  /** How each drop was noticed, e.g. "silent: job.cancel at the tab". */
  detectedBy: Map<string, number>;
  /** Drop → the replacement tab's job.assign (attempt ≥ 2). */
  redispatchMs: Record<DropKind, number[]>;
  /** Drop → the coordinator closed the silent tab's socket (liveness sweep), whatever came first. */
  sweepCloseMs: number[];
  /** Jobs whose replacement got a continueFrom that is not a prefix of the answer. */
  badContinue: number;
  undetected: number;
  wallMs: number;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export function measure(run: RunResult): RunMetrics {
  const m: RunMetrics = {
    maxAttempts: run.maxAttempts,
    requests: run.jobs.length,
    correct: 0,
    wrongText: 0,
    outcomes: new Map(),
    drops: { abrupt: 0, silent: 0 },
    droppedCorrect: 0,
    detectMs: { abrupt: [], silent: [] },
    detectedBy: new Map(),
    redispatchMs: { abrupt: [], silent: [] },
    sweepCloseMs: [],
    badContinue: 0,
    undetected: 0,
    wallMs: run.wallMs,
  };
  for (const { plan, client } of run.jobs) {
    const ok = client.outcome === "done" && client.text === plan.text;
    if (ok) m.correct++;
    if (client.outcome === "done" && !ok) m.wrongText++;
    bump(m.outcomes, client.outcome === "done" && !ok ? "done, wrong text" : client.outcome);
    const trace = client.jobId ? run.obs.get(client.jobId) : undefined;
    if (trace?.badContinue) m.badContinue++;
    const drop = trace?.drop;
    if (!trace || !drop) continue;
    m.drops[drop.kind]++;
    if (ok) m.droppedCorrect++;
    if (trace.closedSilentTab !== undefined) m.sweepCloseMs.push(trace.closedSilentTab - drop.at);
    const replacement = trace.assigns.find((a) => a.attempt >= 2 && a.at >= drop.at);
    if (replacement) m.redispatchMs[drop.kind].push(replacement.at - drop.at);
    const seen: Array<[string, number | undefined]> = [
      ["replacement job.assign", replacement?.at],
      ["job.cancel at the silent tab", trace.cancelAtSilentTab],
      ["socket closed by the coordinator", trace.closedSilentTab],
    ];
    // Without failover an abrupt drop is visible only in the client's error event.
    if (!replacement && drop.kind === "abrupt" && client.outcome === "error_event") {
      seen.push(["client's error event (no failover)", client.endedAt]);
    }
    const first = seen
      .filter((s): s is [string, number] => s[1] !== undefined)
      .sort((a, b) => a[1] - b[1])[0];
    if (!first) {
      m.undetected++;
      continue;
    }
    m.detectMs[drop.kind].push(first[1] - drop.at);
    bump(m.detectedBy, `${drop.kind}: ${first[0]}`);
  }
  return m;
}

const ms = (v: number) => (Number.isFinite(v) ? String(Math.round(v)) : "–");
const pair = (xs: number[]) =>
  xs.length ? `${ms(percentile(xs, 50))} / ${ms(percentile(xs, 95))}` : "–";
const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)}%` : "–");
const yes = (ok: boolean) => (ok ? "yes" : "NO");

export const TABLE_HEADER = [
  "run",
  "MAX_ATTEMPTS",
  "requests",
  "complete & correct",
  "completion",
  "≥ 99%",
  "vs baseline",
  "dropped (abrupt+silent)",
  "dropped, completed",
  "detect abrupt p50/p95 ms",
  "detect silent p50/p95 ms",
  "detect p95 / interval",
  "≤ 2 intervals",
  "re-dispatch abrupt p50/p95 ms",
  "≤ 1 s",
];

export function tableRow(
  name: string,
  m: RunMetrics,
  baseline: RunMetrics | undefined,
  statusIntervalMs: number,
): string[] {
  const rate = m.requests ? m.correct / m.requests : 0;
  const baseRate = baseline && baseline.requests ? baseline.correct / baseline.requests : NaN;
  const allDetect = [...m.detectMs.abrupt, ...m.detectMs.silent];
  const detectP95 = percentile(allDetect, 95);
  const redispatchP95 = percentile(m.redispatchMs.abrupt, 95);
  const failover = m.maxAttempts > 1;
  return [
    name,
    String(m.maxAttempts),
    String(m.requests),
    String(m.correct),
    pct(m.correct, m.requests),
    failover ? yes(rate >= 0.99) : "(baseline)",
    baseline && failover && baseRate > 0 ? `${(rate / baseRate).toFixed(3)}×` : "–",
    `${m.drops.abrupt + m.drops.silent} (${m.drops.abrupt}+${m.drops.silent})`,
    `${m.droppedCorrect} (${pct(m.droppedCorrect, m.drops.abrupt + m.drops.silent)})`,
    pair(m.detectMs.abrupt) + (failover ? "" : " ¹"),
    pair(m.detectMs.silent),
    allDetect.length ? (detectP95 / statusIntervalMs).toFixed(2) : "–",
    allDetect.length ? yes(detectP95 <= 2 * statusIntervalMs) : "–",
    failover ? pair(m.redispatchMs.abrupt) : "– (off)",
    failover && m.redispatchMs.abrupt.length ? yes(redispatchP95 <= 1000) : "–",
  ];
}

/** The lines under the table: where the numbers come from and what went wrong, per run. */
export function details(name: string, m: RunMetrics, run: RunResult): string[] {
  const lines = [`${name} (MAX_ATTEMPTS=${m.maxAttempts}), load phase + drain ${ms(m.wallMs)} ms:`];
  lines.push(
    `  client outcomes: ${[...m.outcomes].map(([k, v]) => `${k} ${v}`).join(", ")}` +
      (m.wrongText ? ` — ${m.wrongText} answers with wrong text` : ""),
  );
  const failed = run.jobs.find((j) => j.client.outcome !== "done" && j.client.error);
  if (failed) {
    lines.push(
      `  e.g. job ${failed.plan.index}: ${failed.client.outcome} ${failed.client.status} ${failed.client.error}`,
    );
  }
  lines.push(
    `  detected by: ${[...m.detectedBy].map(([k, v]) => `${k} ${v}`).join(", ") || "–"}` +
      (m.undetected ? `; not detected: ${m.undetected}` : ""),
  );
  lines.push(
    `  re-dispatch silent p50/p95 ms: ${pair(m.redispatchMs.silent)}; replacements continuing ` +
      `from a non-prefix: ${m.badContinue}; tab connections opened: ${run.tabConnections}`,
  );
  lines.push(
    `  silent tabs closed by the liveness sweep, drop → close p50/p95 ms: ${pair(m.sweepCloseMs)} ` +
      `(n=${m.sweepCloseMs.length}); machine load average ${run.loadAvg[0].toFixed(1)} → ` +
      `${run.loadAvg[1].toFixed(1)}; bench process event-loop delay p99 ` +
      `${ms(run.loopDelayMs[0])} ms, max ${ms(run.loopDelayMs[1])} ms`,
  );
  const wanted = [...run.logCounts].filter(([k]) => !k.startsWith("info: job started"));
  lines.push(
    `  coordinator log: ${wanted
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ×${v}`)
      .join(", ")}`,
  );
  return lines;
}
