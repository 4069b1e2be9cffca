import { Hono } from "hono";
import { isRegionHint } from "../../shared/geo/regions.js";
import { cors } from "hono/cors";
import { readConfig } from "../config.js";
import type { AppContext, AppEnv } from "../env.js";
import { requestAddressKey } from "../http/address-key.js";
import { ApiError } from "../http/api-error.js";
import { requestLocation } from "../http/location.js";
import { regionFor } from "../region/region-stub.js";
import {
  PEERJS_KEY,
  PeerIdSchema,
  SignalCloseCode,
  peerShard,
  type IceConfig,
} from "../../shared/protocol/peerjs-messages.js";
import { checkPeerId, issuePeerId } from "./peer-ids.js";
import { refuseUnissued, refuseWithError } from "./refuse.js";
import { PEER_ADDRESS_HEADER, type SignalDurableObject } from "./signal-do.js";

/**
 * The PeerServer endpoints the official `peerjs` client uses, under /v1/signal (the client's
 * `path: "/v1/signal/"`, default key "peerjs"):
 *   GET /v1/signal/peerjs/id  — a fresh peer id in the caller's shard (text/plain, like PeerServer);
 *                               `?shard=<region hint>` asks for one in that shard (a tab joining a
 *                               caller's shard). Ids are signed (peer-ids.ts): only these connect.
 *   GET /v1/signal/peerjs?key=&id=&token=  — the signalling WebSocket, routed by the id's shard;
 *                               an id this server did not issue is refused here, touching no object
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

  app.get("/signal/peerjs/id", async (c) => {
    const { secret, peerIdTtlMs } = readConfig(c.env).signal;
    if (!secret) throw unconfigured();
    const asked = c.req.query("shard");
    if (asked !== undefined && !isRegionHint(asked)) {
      throw new ApiError(
        400,
        "invalid_request_error",
        "shard must be a region hint (wnam, enam, sam, weur, eeur, apac, oc, afr, me).",
        "shard",
      );
    }
    const shard = asked ?? regionFor(requestLocation(c.req.raw, c.env));
    return c.text(await issuePeerId(secret, shard, peerIdTtlMs), 200, {
      "cache-control": "no-store",
    });
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

  app.get("/signal/peerjs", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(
        426,
        "invalid_request_error",
        "This endpoint expects a WebSocket upgrade.",
      );
    }
    // Signal objects are a fixed set (one per region hint, plus "default"), never named by the
    // caller. An id this server issued names its shard; a malformed id or query is answered by the
    // default shard (the typed ERROR peerjs understands), and a well-formed id that was never
    // issued is refused here, so no object is touched for it.
    const id = c.req.query("id") ?? "";
    const secret = readConfig(c.env).signal.secret;
    const wellFormed =
      PeerIdSchema.safeParse(id).success &&
      !!c.req.query("token") &&
      c.req.query("key") === PEERJS_KEY;
    if (wellFormed && !secret) {
      return refuseWithError(SignalCloseCode.Unavailable, "Signalling is not configured");
    }
    if (wellFormed && secret) {
      const refusal = refuseUnissued(await checkPeerId(secret, id));
      if (refusal) return refusal;
    }
    const claimed = peerShard(id);
    const shard = wellFormed && claimed && isRegionHint(claimed) ? claimed : "default";
    // The peer's address comes from the connection, never from a header the client sent.
    const headers = new Headers(c.req.raw.headers);
    headers.set(PEER_ADDRESS_HEADER, requestAddressKey(c.req.raw.headers));
    return signalStub(c.env, shard).fetch(new Request(c.req.raw.url, { headers }));
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

function unconfigured(): ApiError {
  return new ApiError(
    503,
    "server_error",
    "Direct connections are not configured on this coordinator (SIGNAL_SECRET is unset).",
    null,
    "signalling_unavailable",
  );
}
