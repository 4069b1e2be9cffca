import { BoundHeap } from "../../shared/scheduling/bound-heap.js";
import type { Match } from "../../shared/scheduling/linear-scan.js";
import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import type { CandidateTab, MatchRequest } from "../../shared/scheduling/score.js";
import { Scheduler } from "../../shared/scheduling/scheduler.js";
import type { SchedulerOptions } from "../../shared/scheduling/scheduler-options.js";
import {
  chooseHedge,
  DEFAULT_HEDGE_POLICY,
  type HedgePolicy,
} from "../../shared/scheduling/hedging.js";
import { seedSpeeds } from "../../edge/region/tab-matcher.js";
import { numberFlag, percentile, printTable, schedulerFlags } from "./flags.js";
import { printBands, printTail, type TtftTrace } from "./hedging-tail.js";
import {
  fleetCapacityPerMs,
  makeRequest,
  trueNetworkMs,
  type SimRequest,
  type SimTab,
} from "./population.js";
import type { World } from "./world.js";

/**
 * bench:geo's hedging part: churn + heterogeneity. Tabs' real speeds stray far from their
 * benchmarks (log-normal σ 0.5, and one in ten a straggler at 0.15–0.4× — a GPU shared with a
 * game or a throttled laptop), and tabs are replaced by new identities (a contributor leaves,
 * another joins with nothing timed yet) at `churnPerRequest` per request. Interactive requests
 * with a latency budget (prompts 200–800 tokens, answers up to 64–256) are served by the
 * coordinator's Scheduler twice on the same arrivals and replacements: without hedging, and with
 * `chooseHedge` (shared/scheduling/hedging.ts, which the Region object's TabMatcher calls too)
 * racing a second idle tab whenever the chosen one has no timed job.
 *
 * In virtual time, as simulate.ts: a job's start, first token and end are known when it is placed
 * on an idle tab. A job queued behind a busy tab's running job starts when that job ends, unless a
 * tab that turns idle first takes it (Scheduler.queuedToTake, as the Region object's placement
 * does; `moveQueued`, on unless `--hedging-move 0` — before 2026-11-30 this world committed a
 * queued job to its tab, so its tail held waits the Region object would have cut short).
 * The Region object keeps the first tab whose first delta reaches it; the other is cancelled when
 * that delta arrives plus half its socket round trip (job.cancel travelling to it), and the
 * prefill it did until then is the hedging cost. An untimed first tab that lost runs on to its own
 * first token (or the job's end, whichever reaches the Region object first) and is timed, as the
 * Region object does (`timeLosers`). A replaced tab changes identity when it is next idle (tabs
 * leaving mid-job are bench:churn's subject, not this one's).
 */

const MODEL = "sim-3b";

interface TrueSpeed {
  prefill: number;
  decode: number;
}

function strayFromBenchmark(rng: Rng, tab: SimTab): TrueSpeed {
  const straggler = rng.next() < 0.1 ? rng.range(0.15, 0.4) : 1;
  const stray = () => straggler * Math.min(1.2, Math.exp(0.5 * rng.normal()));
  return { prefill: tab.benchPrefill * stray(), decode: tab.benchDecode * stray() };
}

function interactiveRequest(world: World, rng: Rng, arrivalMs: number): SimRequest {
  const base = makeRequest(world, rng, arrivalMs);
  const maxTokens = 64 + rng.int(193);
  return {
    ...base,
    promptTokens: 200 + rng.int(601),
    maxTokens,
    completionTokens: Math.max(1, Math.round(maxTokens * rng.range(0.3, 1))),
  };
}

export interface HedgingOutcome {
  name: string;
  p50: number;
  p95: number;
  p99: number;
  /** Prefill done by cancelled hedges ÷ prefill done for answers that were delivered. */
  extraPrefill: number;
  hedgedShare: number;
  /** Of hedged requests, how often the second tab won. */
  secondWon: number;
  /** Per measured request, when asked for (`diagnose`). */
  traces?: TtftTrace[];
}

interface Replacement {
  atMs: number;
  tab: number;
  speed: TrueSpeed;
}

function runOnce(
  name: string,
  hedge: boolean | "oracle",
  tabs: readonly SimTab[],
  initial: readonly TrueSpeed[],
  requests: readonly SimRequest[],
  replacements: readonly Replacement[],
  policy: HedgePolicy,
  diagnose = false,
  schedulerOptions: SchedulerOptions = {},
  moveQueued = true,
): HedgingOutcome {
  const scheduler = new Scheduler({
    staleAfterMs: Number.POSITIVE_INFINITY,
    ...schedulerOptions,
  });
  const speed = initial.map((s) => ({ ...s }));
  const ids = tabs.map((t) => t.id);
  const generation = tabs.map(() => 0);
  const freeAt = new Float64Array(tabs.length);
  const pendingSpeed: (TrueSpeed | null)[] = tabs.map(() => null);
  const byId = new Map(ids.map((id, i) => [id, i]));
  const record = (i: number): CandidateTab => ({
    id: ids[i]!,
    location: tabs[i]!.location,
    accessDelayMs: 0,
    socketRttMs: tabs[i]!.measuredSocketRttMs,
    queue: { jobsAhead: 0, freeAtMs: 0 },
    prefillTokensPerSec: tabs[i]!.benchPrefill,
    decodeTokensPerSec: tabs[i]!.benchDecode,
    models: [MODEL],
    loadedModels: [MODEL],
    coldLoadMs: 0,
    lastSeenMs: 0,
  });
  const open = { open: true, busy: false, canQueue: true };
  tabs.forEach((_, i) => scheduler.put(record(i), open));

  /** A replaced tab becomes a new identity once it has nothing to do. */
  const replaceIfIdle = (i: number) => {
    const next = pendingSpeed[i];
    if (!next || scheduler.jobsAhead(ids[i]!) > 0) return;
    scheduler.remove(ids[i]!);
    byId.delete(ids[i]!);
    ids[i] = `${tabs[i]!.id}~${++generation[i]!}`;
    byId.set(ids[i]!, i);
    speed[i] = next;
    pendingSpeed[i] = null;
    scheduler.put(record(i), open);
  };

  const ends = new BoundHeap<{
    tab: number;
    jobId: string;
    observe?: () => void;
    finished?: boolean;
  }>();
  const ttfts: number[] = [];
  const traces: TtftTrace[] = [];
  let wasted = 0;
  let delivered = 0;
  let hedged = 0;
  let secondWon = 0;
  const waiting: SimRequest[] = [];
  /** Jobs queued behind a running one: the tab's running job ends then, and how to start it. */
  const queued = new Map<
    string,
    { req: SimRequest; aheadEnd: number; start: (tab: number, at: number) => void }
  >();
  let nextReplacement = 0;
  let jobSeq = 0;

  const endsUntil = (t: number) => {
    while (ends.size > 0 && ends.peekBound() <= t) {
      const at = ends.peekBound();
      const { tab, jobId, observe, finished } = ends.pop()!;
      observe?.();
      const next = scheduler.left(ids[tab]!, jobId, at, { finished: finished ?? false });
      const starting = next !== null ? queued.get(next) : undefined;
      if (next !== null && starting) {
        queued.delete(next);
        freeAt[tab] = at; // its own end was held there while it waited
        starting.start(tab, at);
      }
      replaceIfIdle(tab);
      if (scheduler.jobsAhead(ids[tab]!) > 0) continue;
      if (waiting.length > 0) place(waiting.shift()!, at);
      else takeQueued(tab, at);
    }
  };

  /** A tab turned idle with nothing waiting: it takes a queued job it would start sooner. */
  const takeQueued = (tab: number, at: number) => {
    if (!moveQueued) return;
    const take = scheduler.queuedToTake(ids[tab]!, at);
    const job = take ? queued.get(take.jobId) : undefined;
    if (!take || !job) return;
    queued.delete(take.jobId);
    scheduler.left(take.fromTabId, take.jobId, at);
    freeAt[byId.get(take.fromTabId)!] = job.aheadEnd;
    scheduler.assigned(ids[tab]!, take.jobId, job.req, at);
    job.start(tab, at);
  };

  /** Where the first token would reach the Region object, and the job's timing on tab i. */
  const timing = (i: number, req: SimRequest, now: number) => {
    const start = Math.max(now, freeAt[i]!);
    const prefillMs = (req.promptTokens * 1000) / (speed[i]!.prefill * req.speedNoise);
    const decodeMs = ((req.completionTokens - 1) * 1000) / (speed[i]!.decode * req.speedNoise);
    return { start, prefillMs, decodeMs, atRegion: start + tabs[i]!.trueSocketRttMs + prefillMs };
  };

  /** The reference: the tab with the earliest true first token (true speeds, queues, network). */
  const trueBestOf = (req: SimRequest, now: number) => {
    let best = 0;
    let bestMs = Infinity;
    for (let i = 0; i < tabs.length; i++) {
      const ms =
        timing(i, req, now).atRegion + trueNetworkMs(req, tabs[i]!) - tabs[i]!.trueSocketRttMs;
      if (ms < bestMs) [best, bestMs] = [i, ms];
    }
    return { best, bestMs };
  };
  const trueBest = (req: SimRequest, now: number) => trueBestOf(req, now).best;

  const place = (req: SimRequest, now: number) => {
    const mreq: MatchRequest = {
      clientLocation: req.client,
      model: MODEL,
      promptTokens: req.promptTokens,
      maxTokens: req.maxTokens,
      stream: true,
      latencyBudgetMs: 60_000,
    };
    const result = scheduler.choose(mreq, now);
    const match: Match | null =
      result.kind === "match" ? result.match : result.kind === "over_budget" ? result.best : null;
    if (!match) {
      waiting.push(req);
      return;
    }
    const second = hedge === true ? chooseHedge(scheduler, mreq, now, match, policy) : null;
    const chosenSamples = scheduler.samples(match.tab.id);
    const jobId = `job-${jobSeq++}`;
    const runners = [match, ...(second ? [second] : [])].map((m) => {
      const i = hedge === "oracle" ? trueBest(req, now) : byId.get(m.tab.id)!;
      return { i, id: ids[i]!, ...timing(i, req, now) };
    });
    runners.sort((a, b) => a.atRegion - b.atRegion);
    const [winner, loser] = runners as [(typeof runners)[0], (typeof runners)[0] | undefined];
    if (second) {
      hedged++;
      if (winner.id === ids[byId.get(second.tab.id)!]) secondWon++;
    }
    type Runner = (typeof runners)[0];
    /** The winner's first token and end, once its start is known (at once unless it queued). */
    const record = (w: Runner, timed: boolean) => {
      const ttft =
        w.atRegion - req.arrivalMs + trueNetworkMs(req, tabs[w.i]!) - tabs[w.i]!.trueSocketRttMs;
      ttfts.push(ttft);
      if (diagnose) {
        const first = w.i === winner.i ? (runners.find((r) => r.id === match.tab.id) ?? w) : w;
        const firstTtft =
          first.atRegion +
          trueNetworkMs(req, tabs[first.i]!) -
          tabs[first.i]!.trueSocketRttMs -
          req.arrivalMs;
        traces.push({
          ttftMs: ttft,
          heldMs: now - req.arrivalMs,
          queueMs: w.start - now,
          networkMs: trueNetworkMs(req, tabs[w.i]!),
          prefillMs: w.prefillMs,
          promptTokens: req.promptTokens,
          chosenSamples,
          chosenQueued: match.tab.queue.jobsAhead > 0,
          hedged: second !== null,
          secondWon: second !== null && w.id === second.tab.id,
          chosenEstError: (firstTtft - (now - req.arrivalMs)) / match.estimate.ttftMs,
          winnerTrueOverBench: speed[w.i]!.prefill / tabs[w.i]!.benchPrefill,
          winnerGpu: tabs[w.i]!.gpu,
          bestPossibleMs: bestPossibleMs - req.arrivalMs,
        });
      }
      delivered += req.promptTokens;
      const end = w.start + w.prefillMs + w.decodeMs;
      freeAt[w.i] = end;
      ends.push(end, {
        tab: w.i,
        jobId,
        finished: true,
        ...(timed
          ? {
              observe: () =>
                scheduler.observe(w.id, {
                  clientLocation: req.client,
                  timedAt: "tab",
                  promptTokens: req.promptTokens,
                  ttftMs: tabs[w.i]!.trueSocketRttMs + w.prefillMs,
                  prefillMs: w.prefillMs,
                  completionTokens: req.completionTokens,
                  decodeMs: w.decodeMs,
                }),
            }
          : {}),
      });
    };
    const bestPossibleMs = diagnose ? trueBestOf(req, now).bestMs : 0;
    const winnerEnd = winner.start + winner.prefillMs + winner.decodeMs;
    if (winner.start > now && hedge !== "oracle") {
      // Queued behind the tab's running job: it starts when that job ends, unless a tab that
      // frees up first takes it (Scheduler.queuedToTake, as the Region object's placement does).
      scheduler.assigned(winner.id, jobId, req, now, mreq);
      freeAt[winner.i] = winnerEnd;
      queued.set(jobId, {
        req,
        aheadEnd: winner.start,
        start: (i, at) => record({ i, id: ids[i]!, ...timing(i, req, at) }, i !== winner.i),
      });
      return;
    }
    scheduler.assigned(winner.id, jobId, req, now);
    // As the Region object: jobs that waited are not timed.
    record(winner, winner.start === now);
    if (loser) {
      // An untimed first tab that lost runs on to its own first token when the policy times
      // losers (hedging.ts); the cancel then reaches it half a socket round trip later.
      // Untimed (no timed job), as the Region object tells it (edge/region/hedging.ts).
      const timeIt = policy.timeLosers && loser.id === match.tab.id && chosenSamples === 0;
      // The job's end (its job.done reaching the Region object) stops a loser still running.
      const doneAt = winnerEnd + tabs[winner.i]!.trueSocketRttMs / 2;
      const timedLoser = timeIt && loser.atRegion <= doneAt;
      const answeredAt = timeIt ? Math.min(loser.atRegion, doneAt) : winner.atRegion;
      const cancelAt = Math.max(loser.start, answeredAt + tabs[loser.i]!.trueSocketRttMs / 2);
      const busy = Math.min(loser.prefillMs + loser.decodeMs, cancelAt - loser.start);
      wasted += (Math.min(busy, loser.prefillMs) / loser.prefillMs) * req.promptTokens;
      freeAt[loser.i] = loser.start + busy;
      scheduler.assigned(loser.id, `${jobId}~hedge`, req, now);
      const rtt = tabs[loser.i]!.trueSocketRttMs;
      ends.push(loser.start + busy, {
        tab: loser.i,
        jobId: `${jobId}~hedge`,
        ...(timedLoser
          ? {
              // As the Region object: dispatch to first delta, no prefill report (the tab's
              // job.done after a cancel is not waited for). Its first observation is learned
              // against the no-claim speeds (TabMatcher.observe); for every other job that
              // makes no difference here (the first observation sets both speeds outright), but
              // this one measures no decode, which stays at the no-claim rate until a job ends.
              observe: () => {
                if (scheduler.samples(loser.id) === 0) {
                  scheduler.rebase(loser.id, seedSpeeds({ gpu: null }, undefined));
                }
                scheduler.observe(loser.id, {
                  clientLocation: req.client,
                  timedAt: "tab",
                  promptTokens: req.promptTokens,
                  ttftMs: rtt + loser.prefillMs,
                });
              },
            }
          : {}),
      });
    }
  };

  for (const req of requests) {
    const now = req.arrivalMs;
    while (nextReplacement < replacements.length && replacements[nextReplacement]!.atMs <= now) {
      const r = replacements[nextReplacement++]!;
      endsUntil(r.atMs);
      pendingSpeed[r.tab] = r.speed;
      replaceIfIdle(r.tab);
    }
    endsUntil(now);
    place(req, now);
  }
  endsUntil(Number.POSITIVE_INFINITY);
  const measured = ttfts.slice(Math.floor(ttfts.length * 0.1));
  return {
    name,
    p50: percentile(measured, 50),
    p95: percentile(measured, 95),
    p99: percentile(measured, 99),
    extraPrefill: wasted / delivered,
    hedgedShare: hedged / requests.length,
    secondWon: hedged ? secondWon / hedged : 0,
    ...(diagnose ? { traces: traces.slice(Math.floor(traces.length * 0.1)) } : {}),
  };
}

export function runHedging(opts: {
  world: World;
  tabs: readonly SimTab[];
  seed: number;
  load: number;
  count: number;
  churnPerRequest: number;
  /** The hedging policy (defaults: DEFAULT_HEDGE_POLICY). */
  policy?: Partial<HedgePolicy>;
  /** Print where each run's p99 tail comes from (hedging-tail.ts). */
  diagnose?: boolean;
  /** Scheduler options beyond its defaults (both runs; see hedgingFlags). */
  scheduler?: SchedulerOptions;
  /**
   * A tab turning idle takes a job queued behind another tab's running job when it would start
   * it sooner (Scheduler.queuedToTake), as the Region object does. Default on; off is the
   * hedging world before 2026-11-30 (s8), which committed a queued job to its tab.
   */
  moveQueued?: boolean;
}): { met: number; total: number } {
  const policy = { ...DEFAULT_HEDGE_POLICY, ...opts.policy };
  const { world, tabs, seed, load, count } = opts;
  const rng = createRng(seed * 41 + 7);
  const initial = tabs.map((t) => strayFromBenchmark(rng, t));
  const truthTabs = tabs.map((t, i) => ({
    ...t,
    truePrefill: initial[i]!.prefill,
    trueDecode: initial[i]!.decode,
  }));
  const sizing = Array.from({ length: 2000 }, () => interactiveRequest(world, rng, 0));
  const meanGapMs = 1 / (load * fleetCapacityPerMs(truthTabs, sizing));
  const requests: SimRequest[] = [];
  const replacements: Replacement[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += rng.exponential(meanGapMs);
    requests.push(interactiveRequest(world, rng, t));
    if (rng.next() < opts.churnPerRequest) {
      const tab = rng.int(tabs.length);
      replacements.push({ atMs: t, tab, speed: strayFromBenchmark(rng, tabs[tab]!) });
    }
  }
  console.log(
    `\nhedging: churn + heterogeneity, tabs=${tabs.length} requests=${count} load=${load} ` +
      `replacements=${replacements.length} (speeds: benchmark × log-normal σ 0.5, 10% stragglers ` +
      `at 0.15–0.4×); prompts 200–800 tokens, every request with a latency budget`,
  );
  const plain = runOnce(
    "tabgrid, no hedging",
    false,
    tabs,
    initial,
    requests,
    replacements,
    policy,
    opts.diagnose,
    opts.scheduler,
    opts.moveQueued,
  );
  const hedged = runOnce(
    "tabgrid, hedged",
    true,
    tabs,
    initial,
    requests,
    replacements,
    policy,
    opts.diagnose,
    opts.scheduler,
    opts.moveQueued,
  );
  const oracle = runOnce(
    "oracle (true speeds)",
    "oracle",
    tabs,
    initial,
    requests,
    replacements,
    policy,
    opts.diagnose,
    opts.scheduler,
    opts.moveQueued,
  );
  const ms = (v: number) => `${Math.round(v)} ms`;
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const rows = [plain, hedged, oracle].map((r) => [
    r.name,
    ms(r.p50),
    ms(r.p95),
    ms(r.p99),
    `${(r.p99 / r.p50).toFixed(2)}×`,
    pct(r.hedgedShare),
    pct(r.secondWon),
    pct(r.extraPrefill),
  ]);
  printTable(
    [
      "policy",
      "TTFT p50",
      "TTFT p95",
      "TTFT p99",
      "p99 ÷ p50",
      "hedged",
      "second won",
      "extra prefill",
    ],
    rows,
  );
  for (const r of [plain, hedged, oracle]) {
    if (r.traces) printTail(r.name, r.traces, r !== oracle);
  }
  if (opts.diagnose) {
    printBands([plain, hedged, oracle].map((r) => ({ name: r.name, traces: r.traces ?? [] })));
  }
  const tailOk = hedged.p99 <= 1.5 * hedged.p50;
  const costOk = hedged.extraPrefill <= 0.15;
  console.log(
    `target p99 ≤ 1.5× p50 (hedged): ${(hedged.p99 / hedged.p50).toFixed(2)}× — ${tailOk ? "met" : "NOT met"}; ` +
      `target extra prefill ≤ 15%: ${pct(hedged.extraPrefill)} — ${costOk ? "met" : "NOT met"}; ` +
      `hedged p99 ÷ unhedged p99: ${(hedged.p99 / plain.p99).toFixed(2)}×; ` +
      `the oracle's own p99 ÷ p50 (the spread of this request mix and world): ${(oracle.p99 / oracle.p50).toFixed(2)}×`,
  );
  return { met: (tailOk ? 1 : 0) + (costOk ? 1 : 0), total: 2 };
}

/**
 * The hedging run's settings from bench flags (bench:geo's hedging part and bench:hedging alike):
 * `--hedging-load`, `--hedging-requests`, `--churn`, `--diagnose`, and the hedge policy flags, each
 * overriding DEFAULT_HEDGE_POLICY only when given.
 */
export function hedgingFlags(flags: Map<string, string>) {
  return {
    load: numberFlag(flags, "hedging-load", 0.5),
    count: numberFlag(flags, "hedging-requests", 10_000),
    churnPerRequest: numberFlag(flags, "churn", 0.02),
    diagnose: flags.has("diagnose"),
    moveQueued: numberFlag(flags, "hedging-move", 1) === 1,
    scheduler: schedulerFlags(flags),
    policy: {
      ...(flags.has("hedge-below-samples")
        ? { uncertainBelowSamples: numberFlag(flags, "hedge-below-samples", 1) }
        : {}),
      ...(flags.has("hedge-ratio")
        ? { maxEstimateRatio: numberFlag(flags, "hedge-ratio", 2) }
        : {}),
      ...(flags.has("hedge-untimed-share")
        ? { untimedSpeedShare: numberFlag(flags, "hedge-untimed-share", 0) }
        : {}),
      ...(flags.has("hedge-time-losers")
        ? { timeLosers: numberFlag(flags, "hedge-time-losers", 0) === 1 }
        : {}),
    },
  };
}
