import { percentile, printTable } from "./flags.js";

/**
 * Where the tail of a hedging run comes from: for every measured request, what its time to first
 * token was made of and what the scheduler believed when it chose. `--diagnose` in
 * scripts/bench-hedging.ts prints the slowest 1% against all requests.
 */
export interface TtftTrace {
  ttftMs: number;
  /** Time the request waited for any tab to be offered (the coordinator's wait queue). */
  heldMs: number;
  /** Time the winning copy waited behind a job on its tab. */
  queueMs: number;
  networkMs: number;
  prefillMs: number;
  promptTokens: number;
  /** Jobs timed on the first-choice tab when it was chosen. */
  chosenSamples: number;
  /** The first choice was a busy tab (queued behind its job). */
  chosenQueued: boolean;
  hedged: boolean;
  secondWon: boolean;
  /** True time to first token on the first choice ÷ the scheduler's estimate for it. */
  chosenEstError: number;
  /** The answering tab's true prefill speed ÷ its benchmark. */
  winnerTrueOverBench: number;
  winnerGpu: string;
  /** The best time to first token any tab could have given at that moment (true speeds). */
  bestPossibleMs: number;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);
const share = (xs: readonly TtftTrace[], f: (t: TtftTrace) => boolean) =>
  xs.length ? `${((100 * xs.filter(f).length) / xs.length).toFixed(0)}%` : "—";

/**
 * `splits`: also the tail by what the first choice was (not for the oracle, which does not use the
 * scheduler's choice).
 */
export function printTail(name: string, traces: readonly TtftTrace[], splits = true): void {
  const p99 = percentile(
    traces.map((t) => t.ttftMs),
    99,
  );
  const tail = traces.filter((t) => t.ttftMs >= p99);
  const row = (label: string, xs: readonly TtftTrace[]) => [
    label,
    String(xs.length),
    `${Math.round(mean(xs.map((t) => t.ttftMs)))}`,
    `${Math.round(mean(xs.map((t) => t.heldMs)))}`,
    `${Math.round(mean(xs.map((t) => t.queueMs)))}`,
    `${Math.round(mean(xs.map((t) => t.networkMs)))}`,
    `${Math.round(mean(xs.map((t) => t.prefillMs)))}`,
    `${Math.round(mean(xs.map((t) => t.promptTokens)))}`,
    `${Math.round(mean(xs.map((t) => t.bestPossibleMs)))}`,
    share(xs, (t) => t.chosenSamples === 0),
    share(xs, (t) => t.chosenQueued),
    share(xs, (t) => t.hedged),
    share(xs, (t) => t.secondWon),
    mean(xs.map((t) => t.chosenEstError)).toFixed(2),
    share(xs, (t) => t.chosenEstError > 1.5),
    mean(xs.map((t) => t.winnerTrueOverBench)).toFixed(2),
    ["integrated", "mid", "high"].map((g) => share(xs, (t) => t.winnerGpu === g)).join("/"),
  ];
  const best = traces.map((t) => t.bestPossibleMs);
  const bestP50 = percentile(best, 50);
  const bestP99 = percentile(best, 99);
  console.log(`\ntail of "${name}" (requests at or above p99 ${Math.round(p99)} ms; means in ms):`);
  console.log(
    `best possible at each request's arrival (any tab, true speeds, as busy as this policy left them): ` +
      `p50 ${Math.round(bestP50)} ms, p99 ${Math.round(bestP99)} ms, p99 ÷ p50 ${(bestP99 / bestP50).toFixed(2)}×`,
  );
  printTable(
    [
      "requests",
      "n",
      "TTFT",
      "held",
      "queue",
      "network",
      "prefill",
      "prompt",
      "best possible",
      "chosen untimed",
      "chosen busy",
      "hedged",
      "second won",
      "est. error",
      "est. error > 1.5",
      "winner true÷bench",
      "winner int/mid/high",
    ],
    [
      row("all", traces),
      row("p99 tail", tail),
      ...(splits
        ? [
            row(
              "tail: first untimed",
              tail.filter((t) => t.chosenSamples === 0 && !t.chosenQueued),
            ),
            row(
              "tail: first timed, idle",
              tail.filter((t) => t.chosenSamples > 0 && !t.chosenQueued),
            ),
            row(
              "tail: first busy",
              tail.filter((t) => t.chosenQueued),
            ),
          ]
        : []),
    ],
  );
}

/**
 * p50, p99 and their ratio by prompt size: the tail a request mix has of itself. A 800-token
 * prompt prefills four times as long as a 200-token one on the same tab, so the whole run's p99
 * (long prompts) ÷ p50 (all sizes) is partly the spread of sizes, which no routing removes.
 */
export function printBands(runs: readonly { name: string; traces: readonly TtftTrace[] }[]): void {
  const bands: [number, number][] = [
    [200, 400],
    [400, 600],
    [600, 801],
  ];
  const rows: string[][] = [];
  for (const { name, traces } of runs) {
    const cells = [[0, Infinity] as [number, number], ...bands].map(([lo, hi]) => {
      const xs = traces
        .filter((t) => t.promptTokens >= lo && t.promptTokens < hi)
        .map((t) => t.ttftMs);
      const p50 = percentile(xs, 50);
      const p99 = percentile(xs, 99);
      return `${Math.round(p50)} / ${Math.round(p99)} ms = ${(p99 / p50).toFixed(2)}×`;
    });
    rows.push([name, ...cells]);
  }
  console.log("\ntime to first token by prompt size (p50 / p99 = p99 ÷ p50):");
  printTable(["policy", "all prompts", "200–399 tokens", "400–599 tokens", "600–800 tokens"], rows);
}
