/**
 * bench:checkpoints — frames the coordinator receives per direct job, relayed (a coalesced
 * `job.delta` every 50 ms, web/runtime/delta-coalescer.ts) against checkpointed (relay-light,
 * `job.checkpoint` every 128 pieces or 1 s, web/direct/checkpoints.ts), in one run. Both columns
 * run the tab runtime's own batching code on a simulated clock with one engine piece (token) every
 * `ms/token`, so the counts are exactly what a tab sends at that speed; the per-job frames include
 * `job.accept` and `job.done`. Also the oldest text the coordinator's copy lags the caller by
 * (what a failover to another tab could lose from the coordinator's view; the caller has it).
 * The workerd test edge/region/relay-light.test.ts sends such frames to a real Region object.
 *
 *   npm run bench:checkpoints -- [--tokens 100,300,1000] [--ms 10,25,50]
 */
import { CheckpointBatcher } from "../web/direct/checkpoints.js";
import { DeltaCoalescer } from "../web/runtime/delta-coalescer.js";
import { ManualTimers } from "../test/support/manual-timers.js";
import { numberList, printTable, readFlags } from "./sim/flags.js";

const flags = readFlags(process.argv.slice(2));
const lengths = numberList(flags, "tokens", [100, 300, 1000]);
const speeds = numberList(flags, "ms", [10, 25, 50]);

interface Run {
  frames: number;
  /** Longest time a piece waited before it reached the coordinator, ms. */
  maxLagMs: number;
}

function run(tokens: number, msPerToken: number, kind: "relayed" | "checkpointed"): Run {
  const timers = new ManualTimers();
  const waiting: number[] = [];
  let frames = 2; // job.accept and job.done
  let maxLagMs = 0;
  const emit = () => {
    frames += 1;
    for (const at of waiting.splice(0)) maxLagMs = Math.max(maxLagMs, timers.now() - at);
  };
  const batcher =
    kind === "relayed"
      ? new DeltaCoalescer(emit, { timers })
      : new CheckpointBatcher(emit, { timers });
  for (let i = 0; i < tokens; i++) {
    waiting.push(timers.now());
    batcher.push(`t${i} `);
    timers.advance(msPerToken);
  }
  batcher.flush();
  return { frames, maxLagMs };
}

const rows: string[][] = [];
for (const ms of speeds) {
  for (const tokens of lengths) {
    const relayed = run(tokens, ms, "relayed");
    const light = run(tokens, ms, "checkpointed");
    rows.push([
      String(ms),
      String(tokens),
      String(relayed.frames),
      String(light.frames),
      `${(relayed.frames / light.frames).toFixed(1)}x`,
      String(relayed.maxLagMs),
      String(light.maxLagMs),
    ]);
  }
}
console.log("Frames per direct job at the coordinator (simulated clock, the tab's batching code)");
printTable(
  [
    "ms/token",
    "tokens",
    "relayed frames (baseline)",
    "checkpointed frames",
    "ratio",
    "relayed max lag ms",
    "checkpointed max lag ms",
  ],
  rows,
);
