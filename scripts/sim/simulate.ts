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
  ttftMs: number;
  queueWaitMs: number;
}

export function simulate(
  policy: Policy,
  tabs: readonly SimTab[],
  requests: readonly SimRequest[],
  trueFreeAt: Float64Array,
): RequestOutcome[] {
  trueFreeAt.fill(0);
  const ends = new BoundHeap<{ tab: number; job: FinishedJob }>();
  const outcomes: RequestOutcome[] = new Array<RequestOutcome>(requests.length);
  const order = new Map(requests.map((r, i) => [r, i]));
  /** Run `req` on tab `i`, decided at `now` (its arrival, or later when it waited for a tab). */
  const place = (i: number, req: SimRequest, now: number) => {
    const tab = tabs[i]!;
    const start = Math.max(now, trueFreeAt[i]!);
    const prefillMs = (req.promptTokens * 1000) / (tab.truePrefill * req.speedNoise);
    const decodeMs = ((req.completionTokens - 1) * 1000) / (tab.trueDecode * req.speedNoise);
    const networkMs = trueNetworkMs(req, tab);
    const end = start + prefillMs + decodeMs;
    trueFreeAt[i] = end;
    outcomes[order.get(req)!] = {
      ttftMs: start - req.arrivalMs + networkMs + prefillMs,
      queueWaitMs: start - req.arrivalMs,
    };
    policy.assigned(i, req, now);
    ends.push(end, {
      tab: i,
      // What the Region object times: dispatch (or the start after the job ahead) to first delta.
      job: { req, serviceTtftMs: tab.trueSocketRttMs + prefillMs, prefillMs, decodeMs },
    });
  };
  const endsUntil = (t: number) => {
    while (ends.size > 0 && ends.peekBound() <= t) {
      const at = ends.peekBound();
      const { tab, job } = ends.pop()!;
      const next = policy.finished(tab, job, at);
      if (next) place(tab, next, at);
    }
  };
  for (const req of requests) {
    endsUntil(req.arrivalMs);
    const i = policy.choose(req, req.arrivalMs);
    if (i >= 0) place(i, req, req.arrivalMs);
  }
  endsUntil(Number.POSITIVE_INFINITY);
  return outcomes;
}
