import { Hono } from "hono";
import { isRegionHint } from "../../shared/geo/regions.js";
import { cors } from "hono/cors";
import { readConfig } from "../config.js";
import type { AppContext, AppEnv } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { requestLocation } from "../http/location.js";
import { regionFor } from "../region/region-stub.js";
import { peerIdIn, peerShard, type IceConfig } from "../../shared/protocol/peerjs-messages.js";
import type { SignalDurableObject } from "./signal-do.js";

/**
 * The PeerServer endpoints the official `peerjs` client uses, under /v1/signal (the client's
 * `path: "/v1/signal/"`, default key "peerjs"):
 *   GET /v1/signal/peerjs/id  — a fresh peer id in the caller's shard (text/plain, like PeerServer)
 *   GET /v1/signal/peerjs?key=&id=&token=  — the signalling WebSocket, routed by the id's shard
 *   GET /v1/signal/ice  — the operator's STUN/TURN servers ({ iceServers }) for both ends
 * Peer listing (`/peerjs/peers`) is refused, as on a PeerServer without `allow_discovery`.
 */
export function signalRoutes() {
  const app = new Hono<AppContext>();
  // Pages on any site call this with `fetch` (the SDK's p2p transport).
  app.use("/signal/peerjs/id", cors({ origin: "*" }));
  app.use("/signal/ice", cors({ origin: "*" }));

  // STUN/TURN servers are operator configuration (ICE_SERVERS); callers and tabs read them here.
  app.get("/signal/ice", (c) => c.json(iceConfig(c.env), 200, { "cache-control": "max-age=300" }));

  app.get("/signal/peerjs/id", (c) => {
    const shard = regionFor(requestLocation(c.req.raw, c.env));
    const id = peerIdIn(shard, crypto.randomUUID().replaceAll("-", ""));
    return c.text(id, 200, { "cache-control": "no-store" });
  });

  app.get("/signal/peerjs/peers", () => {
    throw new ApiError(
      401,
      "permission_error",
      "Peer discovery is disabled.",
      null,
      "no_discovery",
    );
  });

  app.get("/signal/peerjs", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(
        426,
        "invalid_request_error",
        "This endpoint expects a WebSocket upgrade.",
      );
    }
    // Signal objects are a fixed set (one per region hint, plus "default"), never named by the
    // caller: an id whose shard is not a region (made up, or malformed) is answered by the default
    // shard, which refuses a malformed one with the typed ERROR message peerjs understands.
    const claimed = peerShard(c.req.query("id") ?? "");
    const shard = claimed && isRegionHint(claimed) ? claimed : "default";
    return signalStub(c.env, shard).fetch(
      new Request(c.req.raw.url, { headers: c.req.raw.headers }),
    );
  });

  return app;
}

/** ICE_SERVERS as parsed by edge/config.ts; an invalid value serves none and is logged once. */
export function iceConfig(env: AppEnv): IceConfig {
  return readConfig(env).iceServers;
}

export function signalStub(env: AppEnv, shard: string): DurableObjectStub<SignalDurableObject> {
  return env.SIGNAL.get(env.SIGNAL.idFromName(shard));
}
