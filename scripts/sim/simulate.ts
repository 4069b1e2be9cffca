import { BoundHeap } from "../../shared/scheduling/bound-heap.js";
import type { FinishedJob, Policy } from "./policies.js";
import { trueNetworkMs, type SimRequest, type SimTab } from "./population.js";

/**
 * Discrete-event simulation in virtual time (no timers): requests arrive in order, the policy picks
 * a tab (or keeps the request waiting, as the coordinator's queue does), and the tab runs its jobs
 * one at a time in assignment order (as WebLLM does). Because a tab's queue is FIFO and the truth
 * is fixed, a job's start, first token and end are known when it is assigned; the only events are
 * job ends, which tell the policy a tab has freed up (and may hand it a waiting request).
 */
export interface RequestOutcome {
  req: SimRequest;
  ttftMs: number;
  queueWaitMs: number;
  /** The tab held the conversation's history: only the new tokens were prefilled. */
  cached: boolean;
}

/**
 * The ground truth while a simulation runs, which only the oracle reads: when each tab's queue
 * empties, and which conversation turn its engine holds (the last job it ran, as WebLLM keeps the
 * KV cache of the conversation it served last; -1 for none).
 */
export interface Truth {
  freeAt: Float64Array;
  heldConversation: Int32Array;
  heldTurn: Int32Array;
}

export function newTruth(tabCount: number): Truth {
  return {
    freeAt: new Float64Array(tabCount),
    heldConversation: new Int32Array(tabCount),
    heldTurn: new Int32Array(tabCount),
  };
}

/** Tokens of `req` the tab must prefill: only the new ones when it holds the history. */
export function tokensToPrefill(truth: Truth, tab: number, req: SimRequest): number {
  const c = req.conversation;
  const cached = c && truth.heldConversation[tab] === c.id && truth.heldTurn[tab] === c.turn - 1;
  return cached ? req.promptTokens - c.historyTokens : req.promptTokens;
}

export function simulate(
  policy: Policy,
  tabs: readonly SimTab[],
  requests: readonly SimRequest[],
  truth: Truth,
): RequestOutcome[] {
  truth.freeAt.fill(0);
  truth.heldConversation.fill(-1);
  truth.heldTurn.fill(-1);
  const trueFreeAt = truth.freeAt;
  const ends = new BoundHeap<{ tab: number; job: FinishedJob }>();
  const arrivals = new BoundHeap<SimRequest>();
  for (const req of requests) arrivals.push(req.arrivalMs, req);
  const outcomes: RequestOutcome[] = [];
  /** Run `req` on tab `i`, decided at `now` (its arrival, or later when it waited for a tab). */
  const place = (i: number, req: SimRequest, now: number) => {
    const tab = tabs[i]!;
    const start = Math.max(now, trueFreeAt[i]!);
    const prefillTokens = tokensToPrefill(truth, i, req);
    const prefillMs = (prefillTokens * 1000) / (tab.truePrefill * req.speedNoise);
    const decodeMs = ((req.completionTokens - 1) * 1000) / (tab.trueDecode * req.speedNoise);
    const networkMs = trueNetworkMs(req, tab);
    const end = start + prefillMs + decodeMs;
    trueFreeAt[i] = end;
    truth.heldConversation[i] = req.conversation?.id ?? -1;
    truth.heldTurn[i] = req.conversation?.turn ?? -1;
    outcomes.push({
      req,
      ttftMs: start - req.arrivalMs + networkMs + prefillMs,
      queueWaitMs: start - req.arrivalMs,
      cached: prefillTokens < req.promptTokens,
    });
    policy.assigned(i, req, now);
    ends.push(end, {
      tab: i,
      // What the Region object times: dispatch (or the start after the job ahead) to first delta.
      job: {
        req,
        serviceTtftMs: tab.trueSocketRttMs + prefillMs,
        prefillTokens,
        prefillMs,
        decodeMs,
      },
    });
    if (req.followUp) {
      // The answer reaches the client about when the tab finishes; the user reads and replies.
      const next = req.followUp.req;
      next.arrivalMs = end + networkMs / 2 + req.followUp.thinkMs;
      arrivals.push(next.arrivalMs, next);
    }
  };
  const endsUntil = (t: number) => {
    while (ends.size > 0 && ends.peekBound() <= t) {
      const at = ends.peekBound();
      const { tab, job } = ends.pop()!;
      const next = policy.finished(tab, job, at);
      if (next) place(tab, next, at);
    }
  };
  while (arrivals.size > 0) {
    const now = arrivals.peekBound();
    endsUntil(now);
    const req = arrivals.pop()!;
    const i = policy.choose(req, now);
    if (i >= 0) place(i, req, now);
    if (arrivals.size === 0) endsUntil(Number.POSITIVE_INFINITY);
  }
  endsUntil(Number.POSITIVE_INFINITY);
  return outcomes;
}
