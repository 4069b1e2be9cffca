import { Hono } from "hono";
import type { AppContext } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { requestLocation } from "../http/location.js";
import { REGIONS, regionFor, regionStub } from "../region/region-stub.js";
import { directorySnapshot } from "../directory/directory-client.js";
import { connectViaLink } from "../tab-link/link-route.js";

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
    headers.set("x-tabgrid-node-ip", c.req.header("cf-connecting-ip") ?? "local");
    headers.set("x-request-id", c.get("requestId"));
    if (loc) {
      headers.set("x-tabgrid-node-lat", String(loc.lat));
      headers.set("x-tabgrid-node-lon", String(loc.lon));
    }
    const region = regionFor(loc);
    // The socket ends at its own tab link, which forwards budgeted frames to the Region.
    return connectViaLink(c.env, regionStub(c.env, region), region, c.req.raw.url, headers);
  });

  app.get("/nodes", async (c) => {
    // Only regions the Directory knows to have tabs are asked for their list.
    const snapshot = await directorySnapshot(c.env, true);
    const lists = await Promise.all(
      REGIONS.filter((r) => (snapshot[r]?.nodes ?? 0) > 0).map(async (region) =>
        (await regionStub(c.env, region).listTabs()).map((tab) => ({ ...tab, region })),
      ),
    );
    return c.json({ object: "list", data: lists.flat() });
  });

  return app;
}
