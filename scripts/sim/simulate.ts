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
  /** The tab that ran it (index into the tabs). */
  tab: number;
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
  /** Job ends and arrivals carry the token of the placement that made them (see unplace). */
  const ends = new BoundHeap<{ tab: number; job: FinishedJob; token: number }>();
  const arrivals = new BoundHeap<{ req: SimRequest; token: number }>();
  for (const req of requests) arrivals.push(req.arrivalMs, { req, token: 0 });
  const outcomes: Array<RequestOutcome | null> = [];
  /** Jobs placed and not ended: what undoing a placement needs. */
  const placed = new Map<
    SimRequest,
    { tab: number; outcome: number; token: number; freeAt: number; held: [number, number] }
  >();
  const live = new Map<SimRequest, number>();
  let tokens = 0;
  /**
   * The policy moved a job that was waiting behind another on its tab (it had not started): the
   * tab's truth goes back to before it was placed there, and its end and follow-up are void.
   */
  const unplace = (req: SimRequest) => {
    const p = placed.get(req)!;
    placed.delete(req);
    trueFreeAt[p.tab] = p.freeAt;
    [truth.heldConversation[p.tab], truth.heldTurn[p.tab]] = p.held;
    outcomes[p.outcome] = null;
    live.delete(req);
    if (req.followUp) live.delete(req.followUp.req);
  };
  /** Run `req` on tab `i`, decided at `now` (its arrival, or later when it waited for a tab). */
  const place = (i: number, req: SimRequest, now: number) => {
    if (placed.has(req)) unplace(req);
    const tab = tabs[i]!;
    const token = ++tokens;
    const start = Math.max(now, trueFreeAt[i]!);
    const prefillTokens = tokensToPrefill(truth, i, req);
    const prefillMs = (prefillTokens * 1000) / (tab.truePrefill * req.speedNoise);
    const decodeMs = ((req.completionTokens - 1) * 1000) / (tab.trueDecode * req.speedNoise);
    const networkMs = trueNetworkMs(req, tab);
    const end = start + prefillMs + decodeMs;
    placed.set(req, {
      tab: i,
      outcome: outcomes.length,
      token,
      freeAt: trueFreeAt[i]!,
      held: [truth.heldConversation[i]!, truth.heldTurn[i]!],
    });
    live.set(req, token);
    trueFreeAt[i] = end;
    truth.heldConversation[i] = req.conversation?.id ?? -1;
    truth.heldTurn[i] = req.conversation?.turn ?? -1;
    outcomes.push({
      req,
      tab: i,
      ttftMs: start - req.arrivalMs + networkMs + prefillMs,
      queueWaitMs: start - req.arrivalMs,
      cached: prefillTokens < req.promptTokens,
    });
    policy.assigned(i, req, now);
    ends.push(end, {
      tab: i,
      token,
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
      live.set(next, token);
      arrivals.push(next.arrivalMs, { req: next, token });
    }
  };
  /** The policy's periodic work (Policy.tick), at fixed steps of virtual time while jobs run. */
  const tickMs = policy.tick && policy.tickMs ? policy.tickMs : Number.POSITIVE_INFINITY;
  let nextTick = (requests[0]?.arrivalMs ?? 0) + tickMs;
  const endsUntil = (t: number) => {
    for (;;) {
      const endAt = ends.size > 0 ? ends.peekBound() : Number.POSITIVE_INFINITY;
      if (nextTick <= t && nextTick <= endAt) {
        // With no job running no line can have a job a tab could take: skip to after `t`.
        if (ends.size === 0) {
          if (!Number.isFinite(t)) break;
          nextTick += Math.max(1, Math.ceil((t - nextTick) / tickMs)) * tickMs;
          continue;
        }
        const at = nextTick;
        nextTick += tickMs;
        policy.tick!(at, (tab, req) => place(tab, req, at));
        continue;
      }
      if (endAt > t) break;
      const at = ends.peekBound();
      const { tab, job, token } = ends.pop()!;
      if (live.get(job.req) !== token) continue; // the job was moved before it started
      placed.delete(job.req);
      const next = policy.finished(tab, job, at);
      if (next) place(tab, next, at);
    }
  };
  while (arrivals.size > 0) {
    const now = arrivals.peekBound();
    endsUntil(now);
    const { req, token } = arrivals.pop()!;
    // A follow-up whose turn before was moved: it arrives when the moved turn ends instead.
    if (token !== 0 && live.get(req) !== token) {
      if (arrivals.size === 0) endsUntil(Number.POSITIVE_INFINITY);
      continue;
    }
    const i = policy.choose(req, now);
    if (i >= 0) place(i, req, now);
    if (arrivals.size === 0) endsUntil(Number.POSITIVE_INFINITY);
  }
  endsUntil(Number.POSITIVE_INFINITY);
  return outcomes.filter((o): o is RequestOutcome => o !== null);
}
