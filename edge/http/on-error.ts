import type { Context } from "hono";
import { ApiError } from "./api-error.js";
import type { AppContext } from "../env.js";
import { log } from "./log.js";

/** Build OpenAI's error JSON for an ApiError, carrying the request id in body and header. */
export function errorResponse(err: ApiError, requestId: string): Response {
  return new Response(JSON.stringify(err.toBody(requestId)), {
    status: err.status,
    headers: { "content-type": "application/json", "x-request-id": requestId, ...err.headers },
  });
}

/** Hono onError: typed errors keep their status; anything else is our bug, logged, and a 500. */
export function onError(err: Error, c: Context<AppContext>): Response {
  const requestId = c.get("requestId") ?? "unknown";
  if (err instanceof ApiError) {
    log("info", "request failed", { requestId, status: err.status, code: err.code });
    return errorResponse(err, requestId);
  }
  log("error", "unhandled error", { requestId, error: String(err), stack: err.stack });
  return errorResponse(
    new ApiError(500, "server_error", "Internal error; quote the request id when reporting it."),
    requestId,
  );
}
