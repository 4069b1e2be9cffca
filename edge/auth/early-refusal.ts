import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";
import { EXPOSED_HEADERS } from "../http/exposed-headers.js";
import { errorResponse } from "../http/on-error.js";
import { requestIdFor } from "../http/request-id.js";
import { failedAuthRefusal } from "./failed-auth.js";
import { keyAttempt } from "./key-attempt.js";
import { isKeyedPath } from "./keyed-paths.js";
import { knownValidKey } from "./verify-key.js";

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": EXPOSED_HEADERS.join(","),
};

/** The path of an absolute request URL, without parsing the whole URL. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? undefined : query);
}

/**
 * How long a refusal here is held before it is answered. A caller that waits for each answer (a
 * script or SDK with a few requests in flight — bench:abuse's flooder keeps 8) then gets at most
 * one answer per request in flight per second from this isolate, whatever it sends; a refusal costs
 * the runtime some milliseconds of CPU per request whatever the Worker does (HTTP, the isolate's
 * entry; figures in docs/limits.md), so only fewer refusals make the flood cost less. Waiting costs
 * no CPU (Workers bill CPU time, not wall time).
 */
export const REFUSAL_HOLD_MS = 2000;
/**
 * Refusals held at once in this isolate; past it they are answered at once, so a caller that does
 * not wait for answers cannot make the isolate hold without bound (it is not slowed by holding).
 */
export const MAX_HELD_REFUSALS = 1000;
let held = 0;
/**
 * REFUSAL_HOLD_MS ± half, at random: held for the same time, a flooder's requests would come back
 * together and the refusals of all of them would run in one burst, which a legitimate request
 * arriving then waits behind.
 */
const holdMs = () => REFUSAL_HOLD_MS * (0.5 + Math.random());

/**
 * The Worker's first check, before Hono (routing, request-id, metrics and CORS middleware,
 * authenticate): a request on a path that needs a key, from an address already past its
 * failed-authentication limit (failed-auth.ts), without a key this isolate has verified, is
 * answered here with the same 429 `too_many_failed_authentications` authenticate.ts gives, in
 * OpenAI's error shape with a request id and the CORS headers the route would have had, after
 * REFUSAL_HOLD_MS. Its body is never read: cancelled when the answer goes, so the runtime does not
 * read a 2 MB upload to the end to keep the connection (a client still sending then sees its
 * connection closed instead of the 429). Null for everything else, which goes on to the app.
 *
 * Preflights (OPTIONS) pass: they need no key. Refusals answered here are counted in /metrics by
 * the Worker's entry (edge/index.ts); the address's episode is logged once by failed-auth.ts.
 */
export function earlyRefusal(request: Request, env: AppEnv): Promise<Response> | null {
  if (request.method === "OPTIONS" || !isKeyedPath(pathOf(request.url))) return null;
  const attempt = keyAttempt(request.headers, readConfig(env).anonymous.on);
  if (!attempt || (attempt.parsed && knownValidKey(attempt.parsed.id))) return null;
  const refusal = failedAuthRefusal(attempt.ip);
  if (!refusal) return null;
  const answer = () => {
    request.body?.cancel().catch(() => undefined);
    const res = errorResponse(refusal, requestIdFor(request.headers.get("x-request-id")));
    for (const [name, value] of Object.entries(CORS)) res.headers.set(name, value);
    return res;
  };
  return holdRefusal().then(answer);
}

/**
 * Wait REFUSAL_HOLD_MS ± half before a refusal past the failed-authentication limit is answered
 * (at once when MAX_HELD_REFUSALS are already waiting), then give back `refusal`. Also used by
 * authenticate.ts for the refusals it gives itself (`throw await holdRefusal(overLimit)`: a key
 * id this isolate verified, with a wrong secret).
 */
export function holdRefusal<T = void>(refusal?: T): Promise<T> {
  if (held >= MAX_HELD_REFUSALS) return Promise.resolve(refusal as T);
  held++;
  return new Promise<T>((resolve) =>
    setTimeout(() => {
      held--;
      resolve(refusal as T);
    }, holdMs()),
  );
}
