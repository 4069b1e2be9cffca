import type { AppEnv } from "../env.js";
import type { RegionDurableObject } from "../region/region-do.js";

/** Which Region object a link connects to: the name and location hint of the Worker's stub. */
const REGION_NAME = "x-tabgrid-link-region";
const REGION_HINT = "x-tabgrid-link-hint";
/** Headers the link reads and removes before it forwards the upgrade to the Region. */
export const LINK_REGION_HEADERS = [REGION_NAME, REGION_HINT] as const;

/**
 * The Worker's side of a tab link: a fresh link object for this socket (nothing is stored in it),
 * told which Region object to connect to — the one `region` names, whichever stub the Worker
 * picked (a location hint's object, or one of its shards).
 */
export function connectViaLink(
  env: AppEnv,
  region: DurableObjectStub<RegionDurableObject>,
  hint: string,
  url: string,
  headers: Headers,
): Promise<Response> {
  const name = region.id.name;
  if (!name) throw new Error("tab link: the Region stub was not made from a name");
  const out = new Headers(headers);
  out.set(REGION_NAME, name);
  out.set(REGION_HINT, hint);
  const link = env.TAB_LINK.get(env.TAB_LINK.newUniqueId());
  return link.fetch(new Request(url, { headers: out }));
}

/** In the link: the Region object the Worker chose (connectViaLink). */
export function linkedRegionStub(
  env: AppEnv,
  headers: Headers,
): DurableObjectStub<RegionDurableObject> {
  const name = headers.get(REGION_NAME);
  if (!name) throw new Error("tab link: no Region named");
  const hint = headers.get(REGION_HINT);
  const id = env.REGION.idFromName(name);
  return hint
    ? env.REGION.get(id, { locationHint: hint as DurableObjectLocationHint })
    : env.REGION.get(id);
}
