import { Hono } from "hono";
import type { AppContext, AppEnv } from "../env.js";
import { requestAddressKey } from "../http/address-key.js";
import { ApiError } from "../http/api-error.js";
import { requestLocation } from "../http/location.js";
import { shardStub } from "../region/region-stub.js";
import { parseShard, type Shard } from "../region/shard-name.js";
import { directorySnapshot } from "../directory/directory-client.js";
import { connectViaLink } from "../tab-link/link-route.js";
import { tabRegionStub } from "../region-client/shard-routing.js";
import type { TabListing } from "../region/region-views.js";
import { ListingCache, listingCacheControl } from "./listing-cache.js";

/** Most tabs GET /v1/nodes lists (`total` counts them all; `has_more` says some were left out). */
export const MAX_LISTED_TABS = 500;

export interface TabList {
  object: "list";
  data: Array<TabListing & { region: string }>;
  /** Tabs connected, by the Directory's count (it may lag the list by a second). */
  total: number;
  has_more: boolean;
}

/** GET /v1/nodes as this isolate last built it. */
const tabLists = new ListingCache<TabList>();

/**
 * The contributor side: the tabs' WebSocket and the public list of connected tabs. The URLs say
 * "nodes" (the public API's word); the code says "tab".
 */
export function tabRoutes() {
  const app = new Hono<AppContext>();

  app.get("/nodes/connect", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(
        426,
        "invalid_request_error",
        "This endpoint expects a WebSocket upgrade.",
      );
    }
    const loc = requestLocation(c.req.raw, c.env);
    const headers = new Headers(c.req.raw.headers);
    headers.delete("x-tabgrid-node-lat");
    headers.delete("x-tabgrid-node-lon");
    // The address key (an IPv6 address by its /64): the shard, the per-address socket and connect
    // limits, the flood penalty and "different addresses" of two reporters all count by it.
    const ip = requestAddressKey(c.req.raw.headers);
    headers.set("x-tabgrid-node-ip", ip);
    headers.set("x-request-id", c.get("requestId"));
    if (loc) {
      headers.set("x-tabgrid-node-lat", String(loc.lat));
      headers.set("x-tabgrid-node-lon", String(loc.lon));
    }
    const { stub } = await tabRegionStub(c.env, loc, ip);
    // The socket ends here, in the Worker: its tab link forwards budgeted frames to the Region shard.
    return connectViaLink(c.env, stub, c.req.raw.url, headers);
  });

  app.get("/nodes", async (c) => {
    const list = await tabLists.get(c.env, () => listTabs(c.env));
    const cacheControl = listingCacheControl(c.env);
    if (cacheControl) c.header("cache-control", cacheControl);
    return c.json(list);
  });

  return app;
}

/**
 * At most `cap` (MAX_LISTED_TABS) connected tabs, shards in name order. Only Region objects (every shard of
 * every hint) the Directory knows to have tabs are asked, each for no more than the cap leaves
 * after the shards before it by the Directory's counts, so no shard lists more than is sent.
 */
export async function listTabs(env: AppEnv, cap = MAX_LISTED_TABS): Promise<TabList> {
  const snapshot = await directorySnapshot(env, true);
  const asks: Array<{ shard: Shard; count: number; limit: number }> = [];
  let total = 0;
  let skipped = false;
  for (const [name, s] of Object.entries(snapshot).sort(([a], [b]) => a.localeCompare(b))) {
    const shard = s.nodes > 0 ? parseShard(name) : null;
    if (!shard) continue;
    const limit = cap - total;
    if (limit > 0) asks.push({ shard, count: s.nodes, limit });
    else skipped = true;
    total += s.nodes;
  }
  const lists = await Promise.all(
    asks.map(async ({ shard, limit }) =>
      (await shardStub(env, shard).listTabs(limit)).map((tab) => ({ ...tab, region: shard.hint })),
    ),
  );
  const all = lists.flat();
  const cut = lists.some((l, i) => l.length === asks[i]!.limit && asks[i]!.count > l.length);
  return {
    object: "list",
    data: all.slice(0, cap),
    total: Math.max(total, Math.min(all.length, cap)),
    has_more: skipped || cut || all.length > cap,
  };
}
