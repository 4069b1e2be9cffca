/**
 * Experiment (session 9, reverted): for the races of `--variant` (default: raceTurns) against the
 * default policy on the same conversations (seed 1, 70% load), whether each raced follow-up got
 * faster, what the follow-ups over 720 ms were, and how many of the integrated-GPU hits over
 * 720 ms any tab could have served under 720 ms by prefilling the whole history.
 *   node scripts/sim/run-ts.mjs scripts/sim/conversation-race-diag.ts [variant JSON]
 */
import { createRng } from "../../shared/scheduling/prng.js";
import { percentile } from "./flags.js";
import { tabgridPolicy } from "./policies.js";
import { makeTabs } from "./population.js";
import { conversationArrivals } from "./conversations.js";
import { newTruth, simulate } from "./simulate.js";
import { loadWorld } from "./world.js";
const world = loadWorld();
const tabs = makeTabs(world, createRng(1), 2000);
const run = (o: any) =>
  simulate(
    tabgridPolicy(tabs, o),
    tabs,
    conversationArrivals(world, tabs, 1, 0.7, 1500),
    newTruth(tabs.length),
  ).filter((x) => x.req.conversation!.id >= 150);
const base = run({});
const race = run(JSON.parse(process.argv[2] ?? '{"raceTurns":true}'));
const key = (o: any) => `${o.req.conversation.id}:${o.req.conversation.turn}`;
const bm = new Map(base.map((o) => [key(o), o]));
const raced = race.filter((o) => o.race);
let faster = 0,
  slower = 0,
  same = 0,
  dsum = 0;
const gpu = (i: number) =>
  tabs[i]!.truePrefill < 400 ? "int" : tabs[i]!.truePrefill < 1000 ? "mid" : "high";
for (const o of raced) {
  const b = bm.get(key(o));
  if (!b) continue;
  const d = o.ttftMs - b.ttftMs;
  dsum += d;
  if (d < -20) faster++;
  else if (d > 20) slower++;
  else same++;
}
console.log({ raced: raced.length, faster, slower, same, meanDelta: dsum / raced.length });
console.log(
  "raced TTFT p50/p95",
  percentile(
    raced.map((o) => o.ttftMs),
    50,
  ),
  percentile(
    raced.map((o) => o.ttftMs),
    95,
  ),
);
const f = (outs: any[]) => outs.filter((o) => o.req.conversation.turn >= 1);
for (const [n, outs] of [
  ["base", base],
  ["race", race],
] as const) {
  const over = f(outs).filter((o: any) => o.ttftMs > 720);
  const cat: Record<string, number> = {};
  for (const o of over) {
    const k = `${gpu(o.tab)} ${o.cached ? "hit" : "miss"}${o.race ? " raced" : ""}`;
    cat[k] = (cat[k] ?? 0) + 1;
  }
  console.log(n, "over 720:", over.length, JSON.stringify(cat));
}
// raced follow-ups: holder estimate? winner tiers
const w: Record<string, number> = {};
for (const o of raced) {
  const k = `${gpu(o.tab)} ${o.race!.secondWon ? "second" : "first"} ${o.ttftMs > 720 ? ">720" : "<=720"}`;
  w[k] = (w[k] ?? 0) + 1;
}
console.log(JSON.stringify(w));
const fastest = [...tabs].map((t) => t.truePrefill).sort((a, b) => b - a);
const p90Fast = fastest[Math.floor(fastest.length * 0.05)]!; // the top 5% of tabs
const intHits = f(base).filter((o: any) => o.ttftMs > 720 && o.cached && gpu(o.tab) === "int");
const need = intHits.map((o: any) => (o.req.conversation.historyTokens * 1000) / fastest[0]!);
const need5 = intHits.map((o: any) => (o.req.conversation.historyTokens * 1000) / p90Fast);
console.log("fastest tab prefill", fastest[0], "top-5% tab", p90Fast);
console.log(
  "int hits >720: history tokens p10/p50/p90",
  [10, 50, 90].map((p) =>
    percentile(
      intHits.map((o: any) => o.req.conversation.historyTokens),
      p,
    ),
  ),
);
console.log(
  "whole-history prefill on the fastest tab <720ms:",
  need.filter((x) => x < 720).length,
  "of",
  need.length,
  "; on a top-5% tab:",
  need5.filter((x) => x < 720).length,
);
