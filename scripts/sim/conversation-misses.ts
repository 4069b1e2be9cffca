import { createRng } from "../../shared/scheduling/prng.js";
import {
  numberFlag,
  numberList,
  percentile,
  printTable,
  readFlags,
  schedulerFlags,
} from "./flags.js";
import { tabgridPolicy, type FinishedJob, type Policy } from "./policies.js";
import { makeTabs, trueNetworkMs, type SimRequest, type SimTab } from "./population.js";
import { conversationArrivals } from "./conversations.js";
import { newTruth, simulate, type Truth } from "./simulate.js";
import { loadWorld } from "./world.js";

/**
 * Why follow-up turns miss their history, in bench:geo's conversation world: for each follow-up
 * that did not run on the tab holding its history, what the holder was doing when it arrived —
 * evicted by another job (a first turn or another conversation's turn; queued behind the turn
 * before, taken while protected, or after the protection ran out; still running or done), or still
 * holding it and judged worse (and whether it truly was), or the follow-up waited in line.
 *
 *   node scripts/sim/run-ts.mjs scripts/sim/conversation-misses.ts [--seed 1]
 *        [--conversations 1500] [--conversation-loads 0.3,0.7] [--tabs 2000] [--hold-weight 2]
 *        [--hold-ms 60000] [--no-pace] [--miss-weight 3]
 */
interface Decision {
  holder: number;
  holds: boolean;
  chosen: number;
  /** The first job put on the holder after the turn before (what evicted the history). */
  evictor: Evictor | null;
  holderFreeAt: number;
  trueHolderTtftMs: number;
}
interface Evictor {
  req: SimRequest;
  atMs: number;
  /** Put on the holder while the turn before still ran there (queued behind it). */
  behindTurn: boolean;
  /** Put on the holder after the turn before ended: how long after. */
  afterEndMs: number;
}

function instrument(
  inner: Policy,
  tabs: readonly SimTab[],
  truth: Truth,
): { policy: Policy; decisions: Map<SimRequest, Decision> } {
  /** Per conversation: the tab its latest turn was put on, and when that turn ended (NaN: running). */
  const last = new Map<number, { tab: number; endAt: number }>();
  /** Per tab: the conversation whose turn it ran last, and the first job put on it after. */
  const lastTurnOn = new Map<number, number>();
  const evictors = new Map<number, Evictor>();
  const decisions = new Map<SimRequest, Decision>();
  const policy: Policy = {
    name: inner.name,
    choose(req, nowMs) {
      const c = req.conversation;
      const i = inner.choose(req, nowMs);
      if (c && c.turn > 0) {
        const prev = last.get(c.id);
        if (prev) {
          const h = prev.tab;
          const holds = truth.heldConversation[h] === c.id && truth.heldTurn[h] === c.turn - 1;
          const tab = tabs[h]!;
          const trueHolderTtftMs =
            trueNetworkMs(req, tab) +
            Math.max(0, truth.freeAt[h]! - nowMs) +
            ((req.promptTokens - (holds ? c.historyTokens : 0)) * 1000) / tab.truePrefill;
          decisions.set(req, {
            holder: h,
            holds,
            chosen: i,
            evictor: evictors.get(c.id) ?? null,
            holderFreeAt: truth.freeAt[h]!,
            trueHolderTtftMs,
          });
        }
      }
      return i;
    },
    assigned(i, req, nowMs) {
      inner.assigned(i, req, nowMs);
      const prevConv = lastTurnOn.get(i);
      if (prevConv !== undefined && prevConv !== req.conversation?.id && !evictors.has(prevConv)) {
        const p = last.get(prevConv);
        if (p && p.tab === i) {
          evictors.set(prevConv, {
            req,
            atMs: nowMs,
            behindTurn: Number.isNaN(p.endAt),
            afterEndMs: Number.isNaN(p.endAt) ? 0 : nowMs - p.endAt,
          });
        }
      }
      const c = req.conversation;
      if (c) {
        last.set(c.id, { tab: i, endAt: NaN });
        lastTurnOn.set(i, c.id);
        evictors.delete(c.id);
      } else lastTurnOn.delete(i);
    },
    finished(i, job: FinishedJob, nowMs) {
      const c = job.req.conversation;
      if (c) {
        const p = last.get(c.id);
        if (p && p.tab === i) p.endAt = nowMs;
      }
      return inner.finished(i, job, nowMs);
    },
  };
  return { policy, decisions };
}

const flags = readFlags(process.argv.slice(2));
const seed = numberFlag(flags, "seed", 1);
const count = numberFlag(flags, "conversations", 1500);
const loads = numberList(flags, "conversation-loads", [0.3, 0.7]);
const world = loadWorld();
const tabs = makeTabs(world, createRng(seed), numberFlag(flags, "tabs", 2000));
const ms = (v: number) => `${Math.round(v)} ms`;

for (const load of loads) {
  const truth = newTruth(tabs.length);
  const firsts = conversationArrivals(world, tabs, seed, load, count);
  const { policy, decisions } = instrument(
    tabgridPolicy(tabs, {
      ...schedulerFlags(flags),
      ...(flags.has("no-pace") ? { learnReplyPace: false } : {}),
      ...(JSON.parse(flags.get("opts") ?? "{}") as object),
    }),
    tabs,
    truth,
  );
  const outcomes = simulate(policy, tabs, firsts, truth);
  const measured = outcomes.filter(
    (o) => o.req.conversation!.id >= count / 10 && o.req.conversation!.turn >= 1,
  );
  const p95 = percentile(
    measured.map((o) => o.ttftMs),
    95,
  );
  const misses = measured.filter((o) => !o.cached);
  const firstP95 = percentile(
    outcomes
      .filter((o) => o.req.conversation!.id >= count / 10 && o.req.conversation!.turn === 0)
      .map((o) => o.ttftMs),
    95,
  );
  const cause = new Map<string, { n: number; tail: number; ttft: number[] }>();
  const add = (k: string, ttft: number) => {
    const e = cause.get(k) ?? { n: 0, tail: 0, ttft: [] };
    e.n++;
    if (ttft >= p95) e.tail++;
    e.ttft.push(ttft);
    cause.set(k, e);
  };
  // First turns that evicted a history the follow-up then missed: how long after the turn
  // ended (inside the protection window means protection was weighed and lost).
  const afterEnd: number[] = [];
  for (const o of misses) {
    const e = decisions.get(o.req)?.evictor;
    if (e && !e.behindTurn && e.req.conversation?.turn === 0) afterEnd.push(e.afterEndMs);
  }
  for (const o of misses) {
    const d = decisions.get(o.req);
    if (!d) {
      add("no record", o.ttftMs);
      continue;
    }
    if (d.chosen < 0) {
      add(`waited in line (holder ${d.holds ? "held it" : "had lost it"})`, o.ttftMs);
      continue;
    }
    if (d.holds) {
      const right = o.ttftMs <= d.trueHolderTtftMs;
      add(
        `holder held it, judged worse (${right ? "right" : "wrong"}; holder ${d.holderFreeAt > o.req.arrivalMs ? "busy" : "idle"})`,
        o.ttftMs,
      );
      continue;
    }
    const e = d.evictor;
    if (!e) {
      add("holder lost it, no evictor seen (moved?)", o.ttftMs);
      continue;
    }
    const kind = e.req.conversation
      ? e.req.conversation.turn === 0
        ? "a first turn"
        : "another follow-up"
      : "a plain request";
    const when = e.behindTurn
      ? "queued behind the turn before"
      : e.afterEndMs < 60_000
        ? "after the turn ended (≤ 60 s)"
        : "over 60 s after the turn ended";
    const state = d.holderFreeAt > o.req.arrivalMs ? "still busy" : "idle again";
    add(`evicted by ${kind}, ${when}, ${state}`, o.ttftMs);
  }
  console.log(
    `\nload ${Math.round(load * 100)}%: ${measured.length} follow-ups, ${misses.length} missed (${((misses.length / measured.length) * 100).toFixed(1)}%), p95 ${ms(p95)}; hits' p95 ${ms(
      percentile(
        measured.filter((o) => o.cached).map((o) => o.ttftMs),
        95,
      ),
    )}; first turns' p95 ${ms(firstP95)}`,
  );
  // The hits in the tail: on which tabs, after what wait, prefilling how much.
  const slowHits = measured.filter((o) => o.cached && o.ttftMs >= p95 * 0.9);
  const byGpu = new Map<string, number>();
  for (const o of slowHits) byGpu.set(tabs[o.tab]!.gpu, (byGpu.get(tabs[o.tab]!.gpu) ?? 0) + 1);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  console.log(
    `hits at ≥ 0.9× p95: ${slowHits.length}; by GPU ${JSON.stringify(Object.fromEntries(byGpu))}; mean wait ${ms(mean(slowHits.map((o) => o.queueWaitMs)))}; mean new tokens ${Math.round(mean(slowHits.map((o) => o.req.promptTokens - o.req.conversation!.historyTokens)))}; mean network ${ms(mean(slowHits.map((o) => trueNetworkMs(o.req, tabs[o.tab]!))))}`,
  );
  const missGpu = new Map<string, number>();
  for (const o of misses) missGpu.set(tabs[o.tab]!.gpu, (missGpu.get(tabs[o.tab]!.gpu) ?? 0) + 1);
  console.log(`misses ran on: ${JSON.stringify(Object.fromEntries(missGpu))}`);
  if (afterEnd.length > 0)
    console.log(
      `first turns that evicted a missed history, after its turn ended: p10 ${ms(percentile(afterEnd, 10))}, p50 ${ms(percentile(afterEnd, 50))}, p90 ${ms(percentile(afterEnd, 90))}`,
    );
  // Issue 14's target is 0.4× the no-affinity p95: which follow-ups are over it, by the tab's GPU
  // and whether the history was cached there. At most 5% of follow-ups may be.
  const noAffinityAll = simulate(
    tabgridPolicy(tabs, { affinity: false }),
    tabs,
    conversationArrivals(world, tabs, seed, load, count),
    newTruth(tabs.length),
  ).filter((o) => o.req.conversation!.id >= count / 10);
  const noAffinity = noAffinityAll.filter((o) => o.req.conversation!.turn >= 1);
  // First turns' own tail, with and without affinity: where it ran and how long its prompt was.
  const firstTail = (outs: typeof outcomes, name: string) => {
    const first = outs.filter(
      (o) => o.req.conversation!.id >= count / 10 && o.req.conversation!.turn === 0,
    );
    const p = percentile(
      first.map((o) => o.ttftMs),
      95,
    );
    const tail = first.filter((o) => o.ttftMs >= p * 0.9);
    const gpu = new Map<string, number>();
    for (const o of tail) gpu.set(tabs[o.tab]!.gpu, (gpu.get(tabs[o.tab]!.gpu) ?? 0) + 1);
    console.log(
      `first turns at ≥ 0.9× their p95 (${ms(p)}), ${name}: ${tail.length}; by GPU ${JSON.stringify(Object.fromEntries(gpu))}; mean prompt ${Math.round(mean(tail.map((o) => o.req.promptTokens)))} tokens`,
    );
  };
  firstTail(outcomes, "with affinity");
  firstTail(noAffinityAll, "without");
  const target =
    0.4 *
    percentile(
      noAffinity.map((o) => o.ttftMs),
      95,
    );
  const over = new Map<string, number>();
  for (const o of measured.filter((m) => m.ttftMs > target)) {
    const k = `${tabs[o.tab]!.gpu} ${o.cached ? "hit" : "miss"}`;
    over.set(k, (over.get(k) ?? 0) + 1);
  }
  const overCount = [...over.values()].reduce((a, b) => a + b, 0);
  console.log(
    `over the target (0.4 × no-affinity p95 = ${ms(target)}): ${overCount}, at most ${Math.floor(measured.length * 0.05)} for p95; ${JSON.stringify(Object.fromEntries([...over].sort((a, b) => b[1] - a[1])))}`,
  );
  const rows = [...cause.entries()]
    .sort((a, b) => b[1].n - a[1].n)
    .map(([k, e]) => [
      k,
      String(e.n),
      String(e.tail),
      ms(percentile(e.ttft, 50)),
      ms(percentile(e.ttft, 95)),
    ]);
  printTable(["miss cause", "misses", "in follow-up p95 tail", "TTFT p50", "TTFT p95"], rows);
}
