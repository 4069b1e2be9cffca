import { Hono } from "hono";
import type { AppContext } from "../env.js";
import { requestAddressKey } from "../http/address-key.js";
import { ApiError } from "../http/api-error.js";
import { requestLocation } from "../http/location.js";
import { shardStub } from "../region/region-stub.js";
import { parseShard } from "../region/shard-name.js";
import { directorySnapshot } from "../directory/directory-client.js";
import { connectViaLink } from "../tab-link/link-route.js";
import { tabRegionStub } from "../region-client/shard-routing.js";

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
    // Only Region objects (every shard of every hint) the Directory knows to have tabs are asked.
    const snapshot = await directorySnapshot(c.env, true);
    const shards = Object.entries(snapshot).flatMap(([name, s]) => {
      const shard = s.nodes > 0 ? parseShard(name) : null;
      return shard ? [shard] : [];
    });
    const lists = await Promise.all(
      shards.map(async (shard) =>
        (await shardStub(c.env, shard).listTabs()).map((tab) => ({ ...tab, region: shard.hint })),
      ),
    );
    return c.json({ object: "list", data: lists.flat() });
  });

  return app;
}
