import type { Location } from "../../shared/geo/distance.js";
import { REGION_CENTRES, regionsByDistance, type RegionHint } from "../../shared/geo/regions.js";
import type { MatchRequest } from "../../shared/scheduling/score.js";
import {
  homeAcceptUpToMs,
  mergeOffers,
  rankNeighbours,
  spillPlan,
  waitRegion,
  type ModelOffer,
} from "../../shared/scheduling/spillover.js";
import type { ChatMessage, JobError } from "../../shared/protocol/job.js";
import type { Affinity } from "../../shared/scheduling/scheduler.js";
import { routingView } from "../directory/directory-client.js";
import type { RoutingView } from "../directory/directory-do.js";
import type { AppEnv } from "../env.js";
import { apiErrorFromJob } from "../http/api-error.js";
import type { OpenJobResult } from "../region/job-events.js";
import type { JobRequest } from "../region/job-request.js";
import { regionFor, shardStub, type RegionName, type RegionStub } from "../region/region-stub.js";
import { shardSettings } from "../region/shard-config.js";
import type { Shard } from "../region/shard-name.js";
import { queueWithCredit } from "../credits/queue-place.js";
import { followUpAffinity } from "../../shared/scheduling/conversation.js";
import { sha256Hex } from "../region/conversation-hash.js";
import { holderFirst, holderShard } from "./conversation-shards.js";
import { hintRows } from "./hint-rows.js";
import { hintCapacity, idleOn, queueShard, shardOrder, shardsOf } from "./shard-routing.js";
import { checkTabJob } from "./tab-job-check.js";

/** Shards of the home region tried before spilling over (a stale summary can send one astray). */
const MAX_HOME_SHARDS = 3;

interface TabOpened {
  kind: "tab";
  region: RegionName;
  stub: RegionStub;
  opened: Extract<OpenJobResult, { ok: true }>;
}
export type Opened = TabOpened | { kind: "fallback"; reason: JobError };
/** A shard's capacity refusal (`offerMs`: it declined a request asked with `acceptUpToMs`). */
type Refused = Extract<OpenJobResult, { ok: false }>;

/** What the request asks of matching, as the Region objects will see it. */
export function matchOf(request: JobRequest, client: Location): MatchRequest {
  const f = request.match;
  return {
    clientLocation: f.clientLocation ?? client,
    model: request.job.model,
    promptTokens: f.promptTokens,
    maxTokens: f.maxTokens,
    stream: f.stream,
    ...(f.latencyBudgetMs !== undefined ? { latencyBudgetMs: f.latencyBudgetMs } : {}),
  };
}

/**
 * A hint's offer for a model, its shards' reports merged (shared/scheduling/spillover.ts). The
 * rows come grouped by hint once per routing view read (hint-rows.ts), not filtered per call.
 */
export function hintOffer(
  view: RoutingView,
  hint: RegionHint,
  model: string,
): ModelOffer | undefined {
  return mergeOffers(hintRows(view.summaries, hint).map((row) => row.offers?.[model]));
}

/**
 * Where a request runs — the decisions of shared/scheduling/spillover.ts, which bench:geo's
 * per-region policy makes too (scripts/sim/policies.ts):
 * 1. The neighbouring regions' offers for the model, from the summaries their shards report to the
 *    Directory, are ranked by the request's expected first token there (whole answer for a
 *    non-stream). The home region (the client's nearest) is asked first, to take the request only
 *    if its own best offer is within DEFAULT_SPILL_MARGIN of the best neighbour's; among its
 *    shards, the one routing chooses (shard-routing.ts).
 * 2. If home declines (it writes nothing and says what it offered) or has nothing, up to
 *    MAX_SPILL_TRIES neighbours whose estimate beats home's offer are asked, each to take it only
 *    if its real offer beats home's; if none does, home takes it after all.
 * 3. Nobody has a tab: the configured cloud fallback; else the waiting line expected to start it
 *    soonest (home first on ties), in that region's shard with most tabs per queued job.
 * The same region-free request goes to each shard tried; the one that takes it mints the job id,
 * which names that shard. First of all, the job is one a tab can read (tab-job-check.ts).
 */
export async function openJob(
  env: AppEnv,
  loc: Location | null,
  incoming: JobRequest,
): Promise<Opened> {
  checkTabJob(incoming);
  const request = await withAffinity(incoming);
  const home = regionFor(loc);
  const model = request.job.model;
  const initial = shardSettings(env).initialShards;
  const match = matchOf(request, loc ?? REGION_CENTRES[home]);
  const tryShard = async (shard: Shard, queue: boolean, asked = request) => {
    const stub = shardStub(env, shard);
    const opened = await stub.openJob(asked, queue);
    return { stub, opened };
  };
  /**
   * Ask `shard` of `region` to take the request now (no queueing): the opened job, or the shard's
   * capacity refusal (the caller tries elsewhere); any other error is the client's answer.
   */
  const attempt = async (
    region: RegionName,
    shard: Shard,
    asked: JobRequest,
  ): Promise<TabOpened | Refused> => {
    const { stub, opened } = await tryShard(shard, false, asked);
    if (opened.ok) return { kind: "tab", region, stub, opened };
    if (!isCapacityError(opened.error)) throw apiErrorFromJob(opened.error);
    return opened;
  };
  const withLimit = (ms: number): JobRequest =>
    Number.isFinite(ms) ? { ...request, acceptUpToMs: ms } : request;

  let view = await routingView(env);
  let order = shardOrder(view, home, model, initial);
  // A cached summary may predate a tab that just joined one of several shards: re-read it.
  if (order.length === 0) {
    view = await routingView(env, true);
    order = shardOrder(view, home, model, initial);
  }
  if (order.length === 0) order = shardsOf(view, home, initial).slice(0, 1);
  // A follow-up turn tries first the shard whose tab holds its conversation (its matching then
  // weighs that tab as any Region does); the draw above decides only among the others.
  if (request.affinity)
    order = holderFirst(order, holderShard(view, home, request.affinity.key, model, initial));
  const others = regionsByDistance(match.clientLocation)
    .map((r) => r.region)
    .filter((r) => r !== home);
  const rank = (v: RoutingView) =>
    rankNeighbours(
      others.map((region) => ({ region, offer: hintOffer(v, region, model) })),
      match,
      Date.now(),
    );
  let ranked = rank(view);

  let reason: JobError | null = null;
  let homeOfferMs: number | null = null;
  const declined: Shard[] = [];
  const homeLimit = withLimit(homeAcceptUpToMs(ranked));
  const homeShards = order.slice(0, MAX_HOME_SHARDS);
  const hasIdle = (s: Shard) => idleOn(view, s, model) > 0;
  /** Shards asked for an idle tab only that refused: they may still queue it behind a busy one. */
  const idleOnlyRefused: Shard[] = [];
  for (const [i, shard] of homeShards.entries()) {
    // While a later shard reported an idle tab for the model, this one takes the request only onto
    // an idle tab of its own (job-request.ts idleOnly): a shard weighs only its own tabs.
    const idleOnly = homeShards.slice(i + 1).some(hasIdle);
    const next = await attempt(home, shard, idleOnly ? { ...homeLimit, idleOnly } : homeLimit);
    if (!isRefused(next)) return next;
    if (next.offerMs !== undefined) {
      declined.push(shard);
      homeOfferMs = Math.min(homeOfferMs ?? Infinity, next.offerMs);
    } else if (idleOnly) idleOnlyRefused.push(shard);
    reason = keptReason(reason, next.error);
  }
  if (!reason) throw new Error("no shard tried");
  // No shard had an idle tab after all (the snapshot is up to a second old): those that can queue
  // it behind a busy tab of theirs take it as they would have, before any neighbour is asked.
  for (const shard of idleOnlyRefused) {
    const next = await attempt(home, shard, homeLimit);
    if (!isRefused(next)) return next;
  }

  // Home has no tab at all and no neighbour offers one: a cached snapshot may predate a tab that
  // just joined elsewhere, so re-read it before giving up.
  if (homeOfferMs === null && ranked.length === 0) {
    view = await routingView(env, true);
    ranked = rank(view);
  }
  const plan = spillPlan(ranked, homeOfferMs);
  for (const region of plan.tries) {
    const shard = shardOrder(view, region, model, initial)[0];
    if (!shard) continue;
    const next = await attempt(region, shard, withLimit(plan.acceptUpToMs));
    if (!isRefused(next)) return next;
    reason = keptReason(reason, next.error);
  }
  // Home declined for a neighbour that then did not beat it: home takes it after all.
  for (const shard of declined) {
    const next = await attempt(home, shard, request);
    if (!isRefused(next)) return next;
  }

  if (env.FALLBACK_URL) return { kind: "fallback", reason };
  // A latency budget no tab can meet is not helped by waiting in a queue.
  if (reason.code === "over_budget") throw apiErrorFromJob(reason);

  // Wait where the line is expected to start it soonest; without offers (objects that do not
  // report them), at home, or in the nearest region serving the model.
  const serving = others.filter((r) => hintCapacity(view.summaries, r, model).nodes > 0);
  const lines = [home, ...serving].map((region) => ({
    region,
    offer: hintOffer(view, region, model),
  }));
  const queueRegion =
    waitRegion(lines, match, Date.now()) ??
    (reason.code === "model_not_served" ? serving[0] : home);
  if (!queueRegion) throw apiErrorFromJob(reason);
  const shard = queueShard(view, queueRegion, model, initial);
  // Waiting: a key's linked credit may buy its tier's place (credits/queue-place.ts).
  const queued = await queueWithCredit(env, request, (asked) => tryShard(shard, true, asked));
  if (!queued.opened.ok) throw apiErrorFromJob(queued.opened.error);
  return { kind: "tab", region: queueRegion, stub: queued.stub, opened: queued.opened };
}

/**
 * Affinities by the messages they hash: the n choices of one request (api/inference.ts) share
 * their messages array, so the history is hashed once per request, not once per choice.
 */
const hashed = new WeakMap<readonly ChatMessage[], Promise<Affinity | null>>();

/**
 * The request with its follow-up affinity (shared/scheduling/conversation.ts), hashed here once
 * for routing and handed to the Region in the request so it does not hash the history again.
 */
async function withAffinity(request: JobRequest): Promise<JobRequest> {
  if (request.affinity !== undefined) return request;
  const input = request.job.input;
  if (input.kind !== "chat") return { ...request, affinity: null };
  let affinity = hashed.get(input.messages);
  if (!affinity)
    hashed.set(input.messages, (affinity = followUpAffinity(input.messages, sha256Hex)));
  return { ...request, affinity: await affinity };
}

function isRefused(answer: TabOpened | Refused): answer is Refused {
  return "ok" in answer;
}

/**
 * The refusal a client gets if nobody takes its request: the first shard's, unless that one only
 * said the model is not served there and a later shard had something to say about capacity.
 */
function keptReason(kept: JobError | null, next: JobError): JobError {
  return !kept || kept.code === "model_not_served" ? next : kept;
}

/** What counts as "no room here, try elsewhere"; every other error is rethrown to the client. */
function isCapacityError(e: JobError): boolean {
  return e.code === "no_capacity" || e.code === "model_not_served" || e.code === "over_budget";
}
