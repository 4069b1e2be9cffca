import { CloseCode } from "../../shared/protocol/close-codes.js";
import type { AppEnv } from "../env.js";
import { errorResponse } from "../http/on-error.js";
import { SocketBudget } from "../region/frame-budget.js";
import { regionConfig } from "../region/region-config.js";
import { floodPenaltyError } from "../region/tab-connects.js";
import type { RegionDurableObject } from "../region/region-do.js";
import { floodPenaltyS, penalizeFlooder } from "./connect-penalty.js";
import { bridge } from "./socket-bridge.js";

/**
 * The tab link: a tab's WebSocket ends in the Worker that accepted its upgrade, not in the Region
 * object. The Worker opens its own socket to the Region object it chose (a location hint's object
 * or one of its shards), which the Region accepts with the hibernation API as before, and pumps
 * frames between the two within the socket's frame budget and byte limit (socket-bridge.ts).
 *
 * Why in the Worker: Workers are billed for CPU time, not for wall-clock time, and a WebSocket
 * message through a Worker is not a billed request; a link that waits for its tab's next frame costs
 * nothing. A Durable Object holding the same two sockets could never hibernate (its socket to the
 * Region is an outgoing one) and would be billed duration for as long as its tab is connected
 * (docs/scale.md, "Tab links").
 */
export async function connectViaLink(
  env: AppEnv,
  region: DurableObjectStub<RegionDurableObject>,
  url: string,
  headers: Headers,
): Promise<Response> {
  // An address whose tab was just closed for flooding is refused here, before the Region is asked.
  const ip = headers.get("x-tabgrid-node-ip") ?? "unknown";
  const waitS = floodPenaltyS(ip);
  if (waitS !== null) {
    return errorResponse(floodPenaltyError(waitS), headers.get("x-request-id") ?? "unknown");
  }
  const upstream = await region.fetch(new Request(url, { headers }));
  // A refusal before the upgrade (429 too many sockets from this address, …) goes back as is.
  if (upstream.status !== 101 || !upstream.webSocket) return upstream;
  const pair = new WebSocketPair();
  bridge(pair[1], upstream.webSocket, new SocketBudget(regionConfig(env)), (code) => {
    if (code === CloseCode.RateLimited) penalizeFlooder(ip);
  });
  return new Response(null, { status: 101, webSocket: pair[0] });
}
