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
  console.log(`\ntail of "${name}" (requests at or above p99 ${Math.round(p99)} ms; means in ms):`);
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
