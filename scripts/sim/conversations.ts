import { createRng } from "../../shared/scheduling/prng.js";
import type { SchedulerOptions } from "../../shared/scheduling/scheduler-options.js";
import { percentile, printTable } from "./flags.js";
import { leastLoadedPolicy, oraclePolicy, tabgridPolicy, type Policy } from "./policies.js";
import {
  fleetCapacityPerMs,
  makeConversation,
  type SimRequest,
  type SimTab,
} from "./population.js";
import { newTruth, simulate } from "./simulate.js";
import type { World } from "./world.js";

const turnsOf = (first: SimRequest) => {
  const list: SimRequest[] = [];
  for (let r: SimRequest | undefined = first; r; r = r.followUp?.req) list.push(r);
  return list;
};

/**
 * The first turns of `count` conversations at `load` (the share of fleet capacity the turns would
 * use if every prompt were prefilled whole), Poisson arrivals; later turns hang off each first
 * turn and arrive as the simulation answers them. Fresh objects on every call, same seed → same
 * chats.
 */
export function conversationArrivals(
  world: World,
  tabs: readonly SimTab[],
  seed: number,
  load: number,
  count: number,
): SimRequest[] {
  const rng = createRng(seed * 37 + Math.round(load * 1000));
  const sample = Array.from({ length: 300 }, (_, i) => makeConversation(world, rng, -1 - i, 0));
  const sampleTurns = sample.flatMap(turnsOf);
  const meanTurns = sampleTurns.length / sample.length;
  const meanGapMs = meanTurns / (load * fleetCapacityPerMs(tabs, sampleTurns));
  const convRng = createRng(seed * 41 + Math.round(load * 1000));
  let t = 0;
  const firsts: SimRequest[] = [];
  for (let i = 0; i < count; i++) {
    t += convRng.exponential(meanGapMs);
    firsts.push(makeConversation(world, convRng, i, t));
  }
  return firsts;
}

/**
 * bench:geo's conversation part: multi-turn chats (population.ts `makeConversation`) served by
 * Tabgrid's policy with conversation affinity, the same policy without it, least-loaded and the
 * oracle (which knows which tab holds which history), on the same conversations. Measured: time to
 * first token of follow-up turns (turn 2 onwards), where a tab holding the history prefills only
 * the new message.
 */
export function runConversations(opts: {
  world: World;
  tabs: readonly SimTab[];
  seed: number;
  loads: readonly number[];
  count: number;
  /** The Scheduler's options from bench flags (flags.ts `schedulerFlags`), for both tabgrid runs. */
  scheduler?: Omit<SchedulerOptions, "staleAfterMs">;
}): { met: number; total: number } {
  const { world, tabs, seed, count } = opts;
  const ms = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
  const rows: string[][] = [];
  let met = 0;
  let total = 0;
  for (const load of opts.loads) {
    const policies: Array<() => Policy> = [
      () => tabgridPolicy(tabs, { ...opts.scheduler, name: "tabgrid" }),
      () =>
        tabgridPolicy(tabs, { ...opts.scheduler, name: "tabgrid, no affinity", affinity: false }),
      () => leastLoadedPolicy(tabs, createRng(seed + 2)),
      () => oraclePolicy(tabs, truth),
    ];
    const truth = newTruth(tabs.length);
    const results = new Map<
      string,
      { p50: number; p95: number; first95: number; all95: number; hits: number }
    >();
    for (const make of policies) {
      // Fresh conversations per policy (their follow-ups' arrival times depend on the policy),
      // drawn from the same seed, so every policy serves the same chats.
      const firsts = conversationArrivals(world, tabs, seed, load, count);
      const policy = make();
      const outcomes = simulate(policy, tabs, firsts, truth);
      // The first tenth of conversations fill the fleet and train the tracker: not measured.
      const measured = outcomes.filter((o) => o.req.conversation!.id >= count / 10);
      const laterTurns = measured.filter((o) => o.req.conversation!.turn >= 1);
      const later = laterTurns.map((o) => o.ttftMs);
      const hits = laterTurns.filter((o) => o.cached).length / laterTurns.length;
      const first = measured.filter((o) => o.req.conversation!.turn === 0).map((o) => o.ttftMs);
      const all = measured.map((o) => o.ttftMs);
      results.set(policy.name, {
        p50: percentile(later, 50),
        p95: percentile(later, 95),
        first95: percentile(first, 95),
        all95: percentile(all, 95),
        hits,
      });
    }
    const ours = results.get("tabgrid")!;
    for (const [name, r] of results) {
      const ratio = ours.p95 / r.p95;
      let verdict = "";
      if (name === "tabgrid, no affinity") {
        const ok = ratio <= 0.4;
        total++;
        if (ok) met++;
        verdict = `≤ 0.4×: ${ok ? "met" : "NOT met"}`;
      }
      rows.push([
        `${Math.round(load * 100)}%`,
        name,
        ms(r.p50),
        ms(r.p95),
        ms(r.first95),
        ms(r.all95),
        `${Math.round(r.hits * 100)}%`,
        name === "tabgrid" ? "—" : `${ratio.toFixed(2)}×`,
        verdict,
      ]);
    }
  }
  console.log(
    `\nconversations=${count} (5–10 turns, history grows; replies 5–30 s after each answer)`,
  );
  printTable(
    [
      "load",
      "policy",
      "turn ≥ 2 TTFT p50",
      "turn ≥ 2 TTFT p95",
      "turn 1 TTFT p95",
      "all turns p95",
      "history cached",
      "tabgrid p95 ÷ this p95",
      "target",
    ],
    rows,
  );
  return { met, total };
}
