/**
 * bench:geo's hedging part alone, with the same world as bench:geo for the same seed and flags
 * (same tabs: makeTabs from the seed), and `--diagnose` to print where each run's p99 comes from.
 *
 *   node scripts/sim/run-ts.mjs scripts/bench-hedging.ts [--seed N] [--tabs 2000]
 *        [--hedging-requests 10000] [--hedging-load 0.5] [--churn 0.02] [--diagnose]
 *        [--hedge-below-samples 1] [--hedge-ratio 2] [--hedge-untimed-share S] [--hedge-time-losers 0|1]
 *        [--hedging-move 0|1] and the Scheduler's flags (bench-geo.ts, scripts/sim/flags.ts
 *        `schedulerFlags`: --run-lengths, --idle-preference, --spare-*, --fleet-prior …)
 *
 * The hedge flags override DEFAULT_HEDGE_POLICY (shared/scheduling/hedging.ts) field by field;
 * the Scheduler's flags its defaults, as in bench:geo (`--spare-mix 0`: the relative sparing rule
 * off, the world before s9-hedge); `--hedging-move 0` stops tabs turning idle from taking queued jobs (the world before s8-hedge).
 * `--diagnose` also prints p99 ÷ p50 by prompt size.
 */
import { createRng } from "../shared/scheduling/prng.js";
import { numberFlag, readFlags } from "./sim/flags.js";
import { hedgingFlags, runHedging } from "./sim/hedging-run.js";
import { makeTabs } from "./sim/population.js";
import { loadWorld } from "./sim/world.js";

const flags = readFlags(process.argv.slice(2));
const seed = numberFlag(flags, "seed", Date.now() % 1_000_000);
const tabCount = numberFlag(flags, "tabs", 2000);
console.log(`bench:hedging seed=${seed} tabs=${tabCount}`);
const started = Date.now();
const world = loadWorld();
const tabs = makeTabs(world, createRng(seed), tabCount);
const verdict = runHedging({ world, tabs, seed, ...hedgingFlags(flags) });
console.log(
  `targets: ${verdict.met}/${verdict.total} met; ran in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
