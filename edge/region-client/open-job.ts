import type { Location } from "../../shared/geo/distance.js";
import { REGION_CENTRES, regionsByDistance } from "../../shared/geo/regions.js";
import type { JobError } from "../../shared/protocol/job.js";
import { directorySnapshot } from "../directory/directory-client.js";
import type { DirectorySnapshot } from "../directory/directory-do.js";
import type { AppEnv } from "../env.js";
import { apiErrorFromJob } from "../http/api-error.js";
import type { OpenJobResult } from "../region/job-events.js";
import type { JobRequest } from "../region/job-request.js";
import { regionFor, regionStub, type RegionName } from "../region/region-stub.js";
import { queueWithCredit } from "../credits/queue-place.js";

/** Neighbouring regions tried after the home region, nearest first. */
const MAX_SPILLOVER_REGIONS = 3;

export type Opened =
  | {
      kind: "tab";
      region: RegionName;
      stub: ReturnType<typeof regionStub>;
      opened: Extract<OpenJobResult, { ok: true }>;
    }
  | { kind: "fallback"; reason: JobError };

/**
 * Where a request runs: the idle tab expected to answer soonest in the client's nearest region;
 * else one in the next-nearest regions the Directory says have an idle tab for the model
 * (spillover); else the configured cloud fallback; else the bounded queue of the nearest region
 * that serves the model. The same region-free request goes to each region tried; the one that
 * takes it mints the job id.
 */
export async function openJob(
  env: AppEnv,
  loc: Location | null,
  request: JobRequest,
): Promise<Opened> {
  const home = regionFor(loc);
  const model = request.job.model;
  const tryRegion = async (region: RegionName, queue: boolean, asked = request) => {
    const stub = regionStub(env, region);
    const opened = await stub.openJob(asked, queue);
    return { region, stub, opened };
  };

  const first = await tryRegion(home, false);
  if (first.opened.ok) return { kind: "tab", region: home, stub: first.stub, opened: first.opened };
  let reason = first.opened.error;
  if (!isCapacityError(reason)) throw apiErrorFromJob(reason);

  const order = regionsByDistance(loc ?? REGION_CENTRES[home])
    .map((r) => r.region)
    .filter((r) => r !== home);
  const candidates = (snapshot: DirectorySnapshot) => {
    const serving = order.filter((r) => (snapshot[r]?.models[model]?.nodes ?? 0) > 0);
    return {
      serving,
      withIdle: serving.filter((r) => (snapshot[r]?.models[model]?.idle ?? 0) > 0),
    };
  };
  // A cached snapshot may predate a tab that just joined: re-read it before giving up.
  let { serving, withIdle } = candidates(await directorySnapshot(env));
  if (withIdle.length === 0)
    ({ serving, withIdle } = candidates(await directorySnapshot(env, true)));
  for (const region of withIdle.slice(0, MAX_SPILLOVER_REGIONS)) {
    const next = await tryRegion(region, false);
    if (next.opened.ok) return { kind: "tab", region, stub: next.stub, opened: next.opened };
    if (!isCapacityError(next.opened.error)) throw apiErrorFromJob(next.opened.error);
    if (reason.code === "model_not_served") reason = next.opened.error;
  }

  if (env.FALLBACK_URL) return { kind: "fallback", reason };
  // A latency budget no tab can meet is not helped by waiting in a queue.
  if (reason.code === "over_budget") throw apiErrorFromJob(reason);

  const queueRegion = reason.code === "model_not_served" ? serving[0] : home;
  if (!queueRegion) throw apiErrorFromJob(reason);
  // Waiting: a key's linked credit may buy its tier's place (credits/queue-place.ts).
  const queued = await queueWithCredit(env, request, (asked) =>
    tryRegion(queueRegion, true, asked),
  );
  if (!queued.opened.ok) throw apiErrorFromJob(queued.opened.error);
  return { kind: "tab", region: queueRegion, stub: queued.stub, opened: queued.opened };
}

function isCapacityError(e: JobError): boolean {
  return e.code === "no_capacity" || e.code === "model_not_served" || e.code === "over_budget";
}
