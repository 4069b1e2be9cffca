import type { MiddlewareHandler } from "hono";
import type { AppContext } from "../env.js";

/** The caller's `x-request-id` if it is sane, else a new id. */
export function requestIdFor(given: string | null | undefined): string {
  return given && /^[\w.-]{8,64}$/.test(given) ? given : `req_${crypto.randomUUID()}`;
}

/**
 * Give every request an id (or keep the caller's `x-request-id` if it is sane), expose it to
 * handlers and stamp it on the response, so errors, logs and client reports line up.
 */
export function requestId(): MiddlewareHandler<AppContext> {
  return async function requestIdMiddleware(c, next) {
    const id = requestIdFor(c.req.header("x-request-id"));
    c.set("requestId", id);
    await next();
    // Responses passed through from a Durable Object have immutable headers: copy those. A
    // WebSocket upgrade (101) cannot be copied and needs no id.
    if (c.res.status === 101) return;
    try {
      c.res.headers.set("x-request-id", id);
    } catch {
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set("x-request-id", id);
    }
  };
}
