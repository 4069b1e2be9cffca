import { REGION_CENTRES, regionsByDistance } from "../../shared/geo/regions.js";
import {
  rankNeighbours,
  spillPlan,
  waitingMove,
  type ModelOffer,
} from "../../shared/scheduling/spillover.js";
import { routingView } from "../directory/directory-client.js";
import type { RoutingView } from "../directory/directory-do.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import type { ContinuationPort, MovePlanner, RemoteJob } from "../region/continuation.js";
import type { JobRequest } from "../region/job-request.js";
import { shardOfJobId, shardStub } from "../region/region-stub.js";
import { shardSettings } from "../region/shard-config.js";
import { shardName, type Shard } from "../region/shard-name.js";
import { streamIdleMs } from "../config.js";
import { JobStream } from "./job-stream.js";
import { hintOffer, matchOf } from "./open-job.js";
import { shardOrder } from "./shard-routing.js";

/** Sibling shards asked before other hints (as many as the Worker tries at home). */
const MAX_SIBLINGS = 3;

/**
 * Where a Region object continues a job none of its own tabs can take (continuation.ts): the
 * Worker's own routing, from the Directory's view. First the sibling shards of its hint, in the
 * order a new request would try them (shard-routing.ts), then the other hints ranked by the
 * spillover functions the Worker uses (shared/scheduling/spillover.ts), each at its best shard.
 */
export function continuationTargets(
  view: RoutingView,
  self: Shard,
  request: JobRequest,
  initialShards: number,
): Shard[] {
  const model = request.job.model;
  const match = matchOf(request, REGION_CENTRES[self.hint]);
  const siblings = shardOrder(view, self.hint, model, initialShards)
    .filter((s) => s.k !== self.k)
    .slice(0, MAX_SIBLINGS);
  const others = regionsByDistance(match.clientLocation)
    .map((r) => r.region)
    .filter((r) => r !== self.hint);
  const ranked = rankNeighbours(
    others.map((region) => ({ region, offer: hintOffer(view, region, model) })),
    match,
    Date.now(),
  );
  // Nothing here to beat: every neighbour with an offer, best first, up to MAX_SPILL_TRIES.
  const hints = spillPlan(ranked, null).tries;
  const best = hints.flatMap((h) => shardOrder(view, h, model, initialShards).slice(0, 1));
  return [...siblings, ...best];
}

/**
 * The planner for moving jobs waiting in `self`'s line (region/waiting-moves.ts): each sibling
 * shard of its hint by its own reported offer, each other hint by its shards' merged offer (at the
 * shard a new request would try first), ranked by the request's expected objective there
 * (`rankNeighbours`), and the best one kept if it beats staying by the margin (`waitingMove`).
 * Only offers of tabs that can take the job now count: a continuation never waits in a line.
 */
export function movePlanner(view: RoutingView, self: Shard, initialShards: number): MovePlanner {
  return (request, hereMs, nowMs) => {
    const model = request.job.model;
    const match = matchOf(request, REGION_CENTRES[self.hint]);
    const neighbours: Array<{ region: Shard; offer: ModelOffer | undefined }> = shardOrder(
      view,
      self.hint,
      model,
      initialShards,
    )
      .filter((s) => s.k !== self.k)
      .map((s) => ({ region: s, offer: view.summaries[shardName(s)]?.offers?.[model] }));
    for (const r of regionsByDistance(match.clientLocation)) {
      if (r.region === self.hint) continue;
      const first = shardOrder(view, r.region, model, initialShards)[0];
      if (first) neighbours.push({ region: first, offer: hintOffer(view, r.region, model) });
    }
    const move = waitingMove(rankNeighbours(neighbours, match, nowMs), hereMs);
    return move ? { target: move.region, acceptUpToMs: move.acceptUpToMs } : null;
  };
}

/** The continuation port of the Region object `self` (region-do.ts wires it). */
export function continuationPort(env: AppEnv, self: Shard): ContinuationPort {
  const idleMs = streamIdleMs(env);
  const stubOf = (jobId: string) => {
    const shard = shardOfJobId(jobId);
    if (!shard) throw new Error(`not a job id: ${jobId}`);
    return shardStub(env, shard);
  };
  /** Reads a remote job from character `from` of its text, re-subscribing as the Worker does. */
  const remoteJob = (
    jobId: string,
    from: number,
    owner: string | null,
    first: { readerId: string; events: ReadableStream<Uint8Array> } | null,
  ): RemoteJob => {
    const stub = stubOf(jobId);
    const open = (sub: { readerId: string; events: ReadableStream<Uint8Array> }) =>
      new JobStream(
        sub,
        {
          subscribe: (after) => stub.subscribe(jobId, from + after, owner),
          release: (readerId) => stub.release(jobId, readerId),
        },
        idleMs,
      );
    let stream = first ? open(first) : null;
    let stopped = false;
    return {
      jobId,
      async next() {
        if (!stream) {
          const sub = await stub.subscribe(jobId, from, owner);
          if (!sub.ok) return { type: "error", error: sub.error };
          stream = open(sub);
          if (stopped) await stream.cancel();
        }
        return stream.next();
      },
      async stop() {
        stopped = true;
        await stream?.cancel();
      },
    };
  };
  /** Ask `shard` to continue `request`, read from where its continuation starts; null: declined. */
  const openAt = async (shard: Shard, request: JobRequest): Promise<RemoteJob | null> => {
    const opened = await shardStub(env, shard).openJob(request, false);
    const from = request.continuation?.text.length ?? 0;
    return opened.ok ? remoteJob(opened.jobId, from, request.owner, opened) : null;
  };
  return {
    async open(request) {
      const view = await routingView(env, true);
      for (const shard of continuationTargets(
        view,
        self,
        request,
        shardSettings(env).initialShards,
      )) {
        try {
          const opened = await openAt(shard, request);
          if (opened) return opened;
        } catch (e) {
          log("warn", "a shard could not be asked to continue a job", { error: String(e) });
        }
      }
      return null;
    },
    async movePlanner() {
      return movePlanner(await routingView(env), self, shardSettings(env).initialShards);
    },
    openOn: openAt,
    resume: (jobId, after, owner) => remoteJob(jobId, after, owner, null),
    async cancel(jobId, reason, owner) {
      await stubOf(jobId).cancelJob(jobId, reason, owner);
    },
  };
}
