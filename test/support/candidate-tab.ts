import type { Location } from "../../shared/geo/distance.js";
import type { Affinity, Scheduler } from "../../shared/scheduling/scheduler.js";
import type { CandidateTab, MatchRequest } from "../../shared/scheduling/score.js";

/**
 * A tab as the scheduler sees it, for scheduling unit tests: model "m" loaded, idle, 20 ms socket
 * round trip, no access delay or cold load; what a test varies is where it is and how fast.
 */
export function candidateTab(
  id: string,
  o: { location: Location; prefill: number; decode: number },
): CandidateTab {
  return {
    id,
    location: o.location,
    accessDelayMs: 0,
    socketRttMs: 20,
    queue: { jobsAhead: 0, freeAtMs: 0 },
    prefillTokensPerSec: o.prefill,
    decodeTokensPerSec: o.decode,
    models: ["m"],
    loadedModels: ["m"],
    coldLoadMs: 0,
    lastSeenMs: 0,
  };
}

/** A streamed request for model "m" of at most 100 tokens from `clientLocation`. */
export const matchRequest = (clientLocation: Location, promptTokens: number): MatchRequest => ({
  clientLocation,
  model: "m",
  promptTokens,
  maxTokens: 100,
  stream: true,
});

/** A tab's state as the Region puts it: open, idle, may queue one job. */
export const OPEN = { open: true, busy: false, canQueue: true } as const;

/** The tab the scheduler chooses for `req` at `nowMs`, or the result's kind when it matches none. */
export function chosenTab(s: Scheduler, req: MatchRequest, nowMs = 0, affinity?: Affinity): string {
  const result = s.choose(req, nowMs, affinity);
  return result.kind === "match" ? result.match.tab.id : result.kind;
}
