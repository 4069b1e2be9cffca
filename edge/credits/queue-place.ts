import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import type { OpenJobResult } from "../region/job-events.js";
import type { JobRequest } from "../region/job-request.js";
import { ledgerStub, ownerKeyId } from "./ledger-client.js";
import { holdFor, queueClassOf } from "./tiers.js";

/**
 * A request is about to wait in a Region's queue. If its key asked for a latency tier and its
 * linked credit covers the most the request can cost (max_tokens × the tier's price), that much
 * is set aside in the ledger and the request waits in the tier's place, ahead of the base tier;
 * the Region settles the hold when the job ends (region-credits.ts). Otherwise — no tier, no key,
 * too little credit, or the ledger unreachable — it waits in the place it already has (the base
 * tier). Only the queue path calls this, so a request that finds an idle tab costs no ledger call.
 *
 * The hold is keyed by an id minted here for this one job (`holdId`, kept in the job's row), never
 * by the client's x-request-id: a client chooses that id, may send it on several requests, and
 * all n choices of a request share it, so a hold keyed by it was taken once for several paid
 * places and could be settled (for nothing) by another request reusing it.
 */
export async function paidPlace(env: AppEnv, request: JobRequest): Promise<JobRequest> {
  const keyId = ownerKeyId(request.owner);
  if (!request.tier || keyId === null) return request;
  const amount = holdFor(readConfig(env).credits, request.tier, request.match.maxTokens);
  const holdId = `hold_${crypto.randomUUID()}`;
  try {
    const held = await ledgerStub(env).hold(holdId, keyId, amount);
    return held ? { ...request, priority: queueClassOf(request.tier), holdId } : request;
  } catch (err) {
    log("warn", "credit ledger: hold failed; the request waits in the base tier", {
      requestId: request.requestId,
      error: String(err),
    });
    return request;
  }
}

/**
 * Queue `request` with `open`, in its tier's paid place when its key's credit covers it. If the
 * Region does not take it (queue full, an error), what was set aside is released at once.
 */
export async function queueWithCredit<T extends { opened: OpenJobResult }>(
  env: AppEnv,
  request: JobRequest,
  open: (asked: JobRequest) => Promise<T>,
): Promise<T> {
  const asked = await paidPlace(env, request);
  const { holdId } = asked;
  const keyId = ownerKeyId(asked.owner);
  if (holdId === undefined || keyId === null) return open(request);
  const release = () =>
    ledgerStub(env)
      .settle(holdId, keyId, 0)
      .catch((err: unknown) =>
        log("warn", "credit ledger: release failed", {
          requestId: request.requestId,
          error: String(err),
        }),
      );
  let result: T;
  try {
    result = await open(asked);
  } catch (err) {
    await release();
    throw err;
  }
  if (!result.opened.ok) await release();
  return result;
}
