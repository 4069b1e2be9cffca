import { createRng } from "../../shared/scheduling/prng.js";
import { numberList, percentile, printTable, readFlags } from "./flags.js";
import { tabgridPolicy } from "./policies.js";
import { makeTabs } from "./population.js";
import { conversationArrivals } from "./conversations.js";
import { newTruth, simulate, type RequestOutcome } from "./simulate.js";
import { loadWorld } from "./world.js";

/**
 * The trade-off between follow-up turns and first turns in bench:geo's conversation world: each
 * variant of Tabgrid's policy (scheduler options as JSON) on the same conversations, with the
 * follow-ups' p95 against the same policy without affinity (issue 14's ≤ 0.4×) and first turns'
 * p95 beside it. Protection kept for follow-ups is taken from first turns, so a variant is better
 * only if it moves one without the other. Variants are tabgridPolicy options (SchedulerOptions and
 * the simulator's oracleLastTurn / oracleTurnOdds upper bounds); an unknown key is ignored. The
 * other policies docs/routing.md lists were measured with scheduler knobs kept on commit fc90af9.
 *
 *   node scripts/sim/run-ts.mjs scripts/sim/conversation-frontier.ts [--seeds 1,2]
 *        [--conversation-loads 0.7] [--conversations 1500] [--tabs 2000]
 *        [--variants '{"default":{},"hold 2.5":{"holdWeight":2.5}}']
 */
const flags = readFlags(process.argv.slice(2));
const seeds = numberList(flags, "seeds", [1, 2]);
const loads = numberList(flags, "conversation-loads", [0.7]);
const count = numberList(flags, "conversations", [1500])[0]!;
const tabCount = numberList(flags, "tabs", [2000])[0]!;
const variants = JSON.parse(
  flags.get("variants") ??
    '{"default":{},"holdWeight 1.5":{"holdWeight":1.5},"holdWeight 2.5":{"holdWeight":2.5},"holdWeight 3":{"holdWeight":3},"missWeight 1":{"missWeight":1},"missWeight 5":{"missWeight":5}}',
) as Record<string, Parameters<typeof tabgridPolicy>[1]>;
const world = loadWorld();
const ms = (v: number) => `${Math.round(v)} ms`;
const rows: string[][] = [];
for (const seed of seeds) {
  const tabs = makeTabs(world, createRng(seed), tabCount);
  for (const load of loads) {
    const run = (options: Parameters<typeof tabgridPolicy>[1]) => {
      const firsts = conversationArrivals(world, tabs, seed, load, count);
      const outs = simulate(tabgridPolicy(tabs, options), tabs, firsts, newTruth(tabs.length));
      // As bench:geo: the first tenth of conversations is not measured.
      return outs.filter((o) => o.req.conversation!.id >= count / 10);
    };
    const later = (outs: RequestOutcome[]) => outs.filter((o) => o.req.conversation!.turn >= 1);
    const p95 = (outs: RequestOutcome[]) =>
      percentile(
        outs.map((o) => o.ttftMs),
        95,
      );
    const without = p95(later(run({ affinity: false })));
    for (const [name, options] of Object.entries(variants)) {
      const outs = run(options);
      const follow = later(outs);
      const first = outs.filter((o) => o.req.conversation!.turn === 0);
      rows.push([
        String(seed),
        `${Math.round(load * 100)}%`,
        name,
        ms(p95(follow)),
        `${(p95(follow) / without).toFixed(2)}×`,
        ms(p95(first)),
        ms(p95(outs)),
        `${((follow.filter((o) => o.cached).length / follow.length) * 100).toFixed(1)}%`,
      ]);
    }
  }
}
printTable(
  [
    "seed",
    "load",
    "variant",
    "turn ≥ 2 p95",
    "÷ no affinity",
    "turn 1 p95",
    "all turns p95",
    "history cached",
  ],
  rows,
);
