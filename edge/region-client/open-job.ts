import type { Location } from "../../shared/geo/distance.js";
import { REGION_CENTRES, regionsByDistance } from "../../shared/geo/regions.js";
import type { JobError } from "../../shared/protocol/job.js";
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
import { hintCapacity, queueShard, shardOrder, shardsOf } from "./shard-routing.js";

/** Neighbouring regions tried after the home region, nearest first. */
const MAX_SPILLOVER_REGIONS = 3;
/** Shards of the home region tried before spilling over (a stale summary can send one astray). */
const MAX_HOME_SHARDS = 3;

export type Opened =
  | {
      kind: "tab";
      region: RegionName;
      stub: RegionStub;
      opened: Extract<OpenJobResult, { ok: true }>;
    }
  | { kind: "fallback"; reason: JobError };

/**
 * Where a request runs: the idle tab expected to answer soonest in the client's nearest region —
 * among its shards, the one routing chooses (shard-routing.ts: power of two choices over the
 * shards' reported idle tabs and round trips); else one in the next-nearest regions the Directory
 * says have an idle tab for the model (spillover, each to its best shard); else the configured
 * cloud fallback; else the bounded queue of a shard of the nearest region that serves the model.
 * The same region-free request goes to each shard tried; the one that takes it mints the job id,
 * which names that shard.
 */
export async function openJob(
  env: AppEnv,
  loc: Location | null,
  request: JobRequest,
): Promise<Opened> {
  const home = regionFor(loc);
  const model = request.job.model;
  const initial = shardSettings(env).initialShards;
  const tryShard = async (shard: Shard, queue: boolean, asked = request) => {
    const stub = shardStub(env, shard);
    const opened = await stub.openJob(asked, queue);
    return { stub, opened };
  };

  let view = await routingView(env);
  let order = shardOrder(view, home, model, initial);
  // A cached summary may predate a tab that just joined one of several shards: re-read it.
  if (order.length === 0) {
    view = await routingView(env, true);
    order = shardOrder(view, home, model, initial);
  }
  if (order.length === 0) order = shardsOf(view, home, initial).slice(0, 1);
  let reason: JobError | null = null;
  for (const shard of order.slice(0, MAX_HOME_SHARDS)) {
    const next = await tryShard(shard, false);
    if (next.opened.ok) return { kind: "tab", region: home, stub: next.stub, opened: next.opened };
    if (!isCapacityError(next.opened.error)) throw apiErrorFromJob(next.opened.error);
    if (!reason || reason.code === "model_not_served") reason = next.opened.error;
  }
  if (!reason) throw new Error("no shard tried");

  const others = regionsByDistance(loc ?? REGION_CENTRES[home])
    .map((r) => r.region)
    .filter((r) => r !== home);
  const candidates = (v: RoutingView) => {
    const serving = others.filter((r) => hintCapacity(v.summaries, r, model).nodes > 0);
    return {
      serving,
      withIdle: serving.filter((r) => hintCapacity(v.summaries, r, model).idle > 0),
    };
  };
  // A cached snapshot may predate a tab that just joined: re-read it before giving up.
  let { serving, withIdle } = candidates(view);
  if (withIdle.length === 0) {
    view = await routingView(env, true);
    ({ serving, withIdle } = candidates(view));
  }
  for (const region of withIdle.slice(0, MAX_SPILLOVER_REGIONS)) {
    const shard = shardOrder(view, region, model, initial)[0];
    if (!shard) continue;
    const next = await tryShard(shard, false);
    if (next.opened.ok) return { kind: "tab", region, stub: next.stub, opened: next.opened };
    if (!isCapacityError(next.opened.error)) throw apiErrorFromJob(next.opened.error);
    if (reason.code === "model_not_served") reason = next.opened.error;
  }

  if (env.FALLBACK_URL) return { kind: "fallback", reason };
  // A latency budget no tab can meet is not helped by waiting in a queue.
  if (reason.code === "over_budget") throw apiErrorFromJob(reason);

  const queueRegion = reason.code === "model_not_served" ? serving[0] : home;
  if (!queueRegion) throw apiErrorFromJob(reason);
  const shard = queueShard(view, queueRegion, model, initial);
  // Waiting: a key's linked credit may buy its tier's place (credits/queue-place.ts).
  const queued = await queueWithCredit(env, request, (asked) => tryShard(shard, true, asked));
  if (!queued.opened.ok) throw apiErrorFromJob(queued.opened.error);
  return { kind: "tab", region: queueRegion, stub: queued.stub, opened: queued.opened };
}

function isCapacityError(e: JobError): boolean {
  return e.code === "no_capacity" || e.code === "model_not_served" || e.code === "over_budget";
}
