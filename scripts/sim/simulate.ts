import { BoundHeap } from "../../shared/scheduling/bound-heap.js";
import type { FinishedJob, Policy } from "./policies.js";
import { trueNetworkMs, type SimRequest, type SimTab } from "./population.js";

/**
 * Discrete-event simulation in virtual time (no timers): requests arrive in order, the policy picks
 * a tab, and the tab runs its jobs one at a time in assignment order (as WebLLM does). Because a
 * tab's queue is FIFO and the truth is fixed, a job's start, first token and end are known when it
 * is assigned; the only events are job ends, which tell the policy a tab has freed up.
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
  const outcomes: RequestOutcome[] = [];
  for (const req of requests) {
    const now = req.arrivalMs;
    while (ends.size > 0 && ends.peekBound() <= now) {
      const at = ends.peekBound();
      const { tab, job } = ends.pop()!;
      policy.finished(tab, job, at);
    }
    const i = policy.choose(req, now);
    const tab = tabs[i]!;
    const start = Math.max(now, trueFreeAt[i]!);
    const prefillMs = (req.promptTokens * 1000) / (tab.truePrefill * req.speedNoise);
    const decodeMs = ((req.completionTokens - 1) * 1000) / (tab.trueDecode * req.speedNoise);
    const networkMs = trueNetworkMs(req, tab);
    const end = start + prefillMs + decodeMs;
    trueFreeAt[i] = end;
    outcomes.push({ ttftMs: start - now + networkMs + prefillMs, queueWaitMs: start - now });
    policy.assigned(i, req, now);
    ends.push(end, {
      tab: i,
      job: { req, serviceTtftMs: networkMs + prefillMs, prefillMs, decodeMs },
    });
  }
  return outcomes;
}
