import type { MiddlewareHandler } from "hono";
import { readConfig } from "../config.js";
import type { AppContext, AppEnv } from "../env.js";
import { requestAddressKey } from "../http/address-key.js";
import { ApiError } from "../http/api-error.js";
import type { Admission, ClientDurableObject, ClientLimits } from "./client-do.js";
import { clientStub, SlotHold } from "./client-slots.js";
import { holdRefusal } from "./early-refusal.js";
import { failedAuthRefusal, noteFailedAuth } from "./failed-auth.js";
import { keyAttempt } from "./key-attempt.js";
import { knownValidKey, verifyKey } from "./verify-key.js";

/** Who is calling, as handlers see it. */
export interface Caller {
  /** Owner stamped on jobs: `key:<id>`, or null on the anonymous tier (jobs readable by id). */
  owner: string | null;
  tier: "key" | "anonymous";
}

export function anonymousLimits(env: AppEnv): ClientLimits {
  const { rpm, concurrent } = readConfig(env).anonymous;
  return { rpm, concurrent };
}

/**
 * Answers that refuse a request before any job exists (bad body, unknown model or job, body too
 * large): an anonymous caller gets its rate-limit token back for these.
 */
const REFUSED_STATUSES: ReadonlySet<number> = new Set([400, 404, 413]);

export { clientStub };

function refuse(
  admission: Exclude<Admission, { ok: true }>,
  tier: Caller["tier"] = "key",
): ApiError {
  // The anonymous tier limits by address: say so to a caller that sent no key.
  const who = tier === "key" ? "this key" : "this address";
  switch (admission.reason) {
    case "invalid_key":
      return new ApiError(401, "authentication_error", "Invalid API key.", null, "invalid_api_key");
    case "revoked":
      return new ApiError(
        401,
        "authentication_error",
        "This API key was revoked.",
        null,
        "revoked_api_key",
      );
    case "rate_limited":
      return new ApiError(
        429,
        "rate_limit_error",
        `Rate limit reached for ${who}; retry later.`,
        null,
        "rate_limit_exceeded",
        {
          "retry-after": String(admission.retryAfterS),
        },
      );
    case "too_many_concurrent":
      return new ApiError(
        429,
        "rate_limit_error",
        `Too many requests running at once for ${who}; wait for one to finish.`,
        null,
        "too_many_concurrent_requests",
        { "retry-after": String(admission.retryAfterS) },
      );
  }
}

/**
 * Admit a request: `Authorization: Bearer tg_…` keys are checked against their hash and limits;
 * without a key the anonymous tier (if switched on) admits by address with lower limits. A key is
 * checked against the key directory first, so an invalid key creates no per-key object.
 *
 * The concurrency slot (unless `slot: false`) is the request's until it hands it to the jobs it
 * opened (`c.get("slot").handOver`, client-slots.ts), which keep it until they end; a request that
 * opened none holds it until its response body ends, streamed or not.
 */
export function authenticate({
  slot: holdsSlot = true,
}: { slot?: boolean } = {}): MiddlewareHandler<AppContext> {
  return async function authenticateMiddleware(c, next) {
    let stub: DurableObjectStub<ClientDurableObject>;
    let name: string;
    let admission: Admission;
    let caller: Caller;
    const attempt = keyAttempt(c.req.raw.headers, readConfig(c.env).anonymous.on);
    if (attempt) {
      const { ip, parsed } = attempt;
      // An address past its failed-authentication limit is refused before any hashing or object
      // call, unless its key is one this isolate already verified (then checked against that only).
      // The Worker's first check (early-refusal.ts) answers most of these before this runs.
      const overLimit = failedAuthRefusal(ip);
      const known = parsed !== null && knownValidKey(parsed.id);
      if (overLimit && !known) throw await holdRefusal(overLimit);
      const failed = (code: string) =>
        noteFailedAuth(ip, { requestId: c.get("requestId") ?? "unknown", code });
      if (!attempt.bearer) {
        // No key at all counts as a failure too, so a no-key flood meets the same limit.
        failed("missing_api_key");
        throw new ApiError(
          401,
          "authentication_error",
          "Missing API key: send Authorization: Bearer <key>. Keys are issued by the operator.",
          null,
          "missing_api_key",
        );
      }
      if (!parsed) {
        failed("invalid_api_key");
        throw refuse({ ok: false, reason: "invalid_key" });
      }
      const verified = await verifyKey(c.env, parsed, { cacheOnly: overLimit !== null });
      if (verified.check !== "valid") {
        if (overLimit) throw await holdRefusal(overLimit);
        const revoked = verified.check === "revoked";
        failed(revoked ? "revoked_api_key" : "invalid_api_key");
        throw refuse({ ok: false, reason: revoked ? "revoked" : "invalid_key" });
      }
      name = `key:${parsed.id}`;
      stub = clientStub(c.env, name);
      admission = await stub.admit(verified.hash, undefined, { slot: holdsSlot });
      caller = { owner: `key:${parsed.id}`, tier: "key" };
    } else {
      // Anything that is not a Tabgrid key (the openai client insists on sending one) is anonymous.
      name = `ip:${requestAddressKey(c.req.raw.headers)}`;
      stub = clientStub(c.env, name);
      admission = await stub.admit(null, anonymousLimits(c.env), { slot: holdsSlot });
      caller = { owner: null, tier: "anonymous" };
    }
    if (!admission.ok) throw refuse(admission, caller.tier);
    c.set("caller", caller);
    const ref = admission.slot === null ? null : { client: name, slot: admission.slot };
    const hold = new SlotHold(stub, ref, c.executionCtx);
    c.set("slot", hold);
    let released = false;
    const release = (status = 200) => {
      if (released) return;
      released = true;
      hold.release(caller.tier === "anonymous" && REFUSED_STATUSES.has(status));
    };
    try {
      await next();
    } catch (err) {
      release(err instanceof ApiError ? err.status : 500);
      throw err;
    }
    const body = c.res.body;
    if (!body || c.res.status !== 200) return release(c.res.status);
    // Handed to its jobs (or never held): the jobs keep the slot until they end, whatever the body.
    if (!hold.holding) return;
    // Hold the slot while the body streams; free it when it ends, errors or the client goes away.
    // The runtime moves the chunks: the body is piped through a transform stream with no
    // `transform`, so no JavaScript of ours runs per chunk. (A ReadableStream whose `pull` read and
    // enqueued each chunk was 17% of the isolate's busy time in a 20-request burst, docs/scale.md.)
    // A pipe notices a cancelled destination only at its next write, which for an idle stream may
    // never come; so the transformer's `cancel` (the client went away) aborts the pipe at once,
    // which cancels the body (the job is let go) and settles the pipe. `release` runs once, when the
    // pipe settles or on that cancel; `waitUntil` keeps the invocation alive until the pipe settles.
    const hangUp = new AbortController();
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>({
      cancel(reason) {
        release();
        hangUp.abort(reason);
      },
    });
    c.executionCtx.waitUntil(
      body.pipeTo(writable, { signal: hangUp.signal }).then(
        () => release(),
        () => release(),
      ),
    );
    c.res = new Response(readable, c.res);
  };
}
