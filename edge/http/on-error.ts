import type { Context } from "hono";
import { requestAddressKey } from "./address-key.js";
import { ApiError } from "./api-error.js";
import type { AppContext } from "../env.js";
import { log } from "./log.js";
import { RefusalLog } from "./refusal-log.js";

/** Build OpenAI's error JSON for an ApiError, carrying the request id in body and header. */
export function errorResponse(err: ApiError, requestId: string): Response {
  return new Response(JSON.stringify(err.toBody(requestId)), {
    status: err.status,
    headers: { "content-type": "application/json", "x-request-id": requestId, ...err.headers },
  });
}

/**
 * Answers logged elsewhere, at most a bounded number of times per address (failed-auth.ts). A
 * `missing_api_key` from the credit routes (an anonymous caller) is not logged one by one either.
 */
const QUIET_CODES: ReadonlySet<string> = new Set([
  "missing_api_key",
  "invalid_api_key",
  "revoked_api_key",
  "too_many_failed_authentications",
]);

const refusals = new RefusalLog();

/** Hono onError: typed errors keep their status; anything else is our bug, logged, and a 500. */
export function onError(err: Error, c: Context<AppContext>): Response {
  const requestId = c.get("requestId") ?? "unknown";
  if (err instanceof ApiError) {
    // Refused keys are logged where they are counted, boundedly (edge/auth/failed-auth.ts): a
    // flood of made-up keys must not become a flood of log lines.
    // Other refusals are logged within a budget per address (refusal-log.ts); our own failures
    // (5xx) always.
    if (err.status >= 500) {
      log("info", "request failed", { requestId, status: err.status, code: err.code });
    } else if (!QUIET_CODES.has(err.code ?? "")) {
      refusals.refused(requestAddressKey(c.req.raw.headers), {
        requestId,
        status: err.status,
        code: err.code,
      });
    }
    return errorResponse(err, requestId);
  }
  log("error", "unhandled error", { requestId, error: String(err), stack: err.stack });
  return errorResponse(
    new ApiError(500, "server_error", "Internal error; quote the request id when reporting it."),
    requestId,
  );
}
