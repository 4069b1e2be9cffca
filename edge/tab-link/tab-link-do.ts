import { DurableObject } from "cloudflare:workers";
import type { AppEnv } from "../env.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { MAX_FRAME_BYTES } from "../../shared/protocol/node-messages.js";
import { closeSocket, frameTooLarge } from "../durable/socket.js";
import { log } from "../http/log.js";
import { SocketBudget } from "../region/frame-budget.js";
import { regionConfig } from "../region/region-config.js";
import { LINK_REGION_HEADERS, linkedRegionStub } from "./link-route.js";

/**
 * One tab link per contributor socket: where the tab's WebSocket ends instead of in the Region
 * object. It applies the socket's frame budget and byte limit and forwards only frames within them,
 * as they are, over its own WebSocket to the Region (which accepts it with the hibernation API, so
 * the Region still sleeps between frames and answers pings by auto-response). A tab over its
 * budget is closed here with a typed close, the Region is told with the same code, and every frame
 * still in flight from that tab — megabytes of them in TCP buffers, each one an event — is dropped
 * by this object unread: none of them queues in the Region ahead of its own work (docs/limits.md,
 * "Abuse benchmark").
 *
 * Transparent otherwise: the Region's frames (challenge, welcome, job.assign, pong…) and closes go
 * to the tab unchanged, and the tab's closes to the Region, so protocol, reconnect and resend
 * behave as before. Nothing is stored: a link lives exactly as long as its two sockets. Its socket
 * to the Region is an outgoing one, which the runtime cannot hibernate, so a link stays in memory
 * while its tab is connected; it holds two sockets and a budget.
 */
export class TabLinkDurableObject extends DurableObject<AppEnv> {
  /** The upgrade from the Worker (edge/api/nodes.ts): connect to the Region, then accept the tab. */
  override async fetch(request: Request): Promise<Response> {
    const headers = new Headers(request.headers);
    const region = linkedRegionStub(this.env, headers);
    for (const h of LINK_REGION_HEADERS) headers.delete(h);
    const upstream = await region.fetch(new Request(request.url, { headers }));
    // A refusal before the upgrade (429 too many sockets from this address, …) goes back as is.
    if (upstream.status !== 101 || !upstream.webSocket) return upstream;
    const pair = new WebSocketPair();
    bridge(pair[1], upstream.webSocket, new SocketBudget(regionConfig(this.env)));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }
}

/** Forward frames and closes between the tab's socket and the Region's, within the budget. */
function bridge(tab: WebSocket, region: WebSocket, budget: SocketBudget): void {
  const refuse = (code: number, reason: string) => {
    // Frames still arriving from a refused tab find no listener: they go nowhere, run no code here.
    tab.removeEventListener("message", onTabFrame);
    log("warn", "tab link refused frames", { closeCode: code, reason });
    closeSocket(tab, code, reason);
    closeSocket(region, code, reason);
  };
  tab.accept();
  region.accept();
  const onTabFrame = (e: MessageEvent) => {
    const raw = e.data as string | ArrayBuffer;
    if (!budget.take(raw))
      return refuse(CloseCode.RateLimited, "frame rate over the socket's budget");
    if (frameTooLarge(raw, MAX_FRAME_BYTES)) {
      return refuse(CloseCode.FrameTooLarge, `frame too large (limit ${MAX_FRAME_BYTES} bytes)`);
    }
    try {
      region.send(raw);
    } catch {
      // The Region's side is closing; its close event closes the tab.
    }
  };
  tab.addEventListener("message", onTabFrame);
  region.addEventListener("message", (e: MessageEvent) => {
    try {
      tab.send(e.data as string | ArrayBuffer);
    } catch {
      // The tab's side is closing; its close event closes the Region's.
    }
  });
  tab.addEventListener("close", (e: CloseEvent) => closeSocket(region, e.code, e.reason));
  region.addEventListener("close", (e: CloseEvent) => closeSocket(tab, e.code, e.reason));
  tab.addEventListener("error", () => closeSocket(region, 1011, "tab socket failed"));
  region.addEventListener("error", () => closeSocket(tab, 1011, "coordinator socket failed"));
}
