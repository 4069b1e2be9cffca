import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import type { OpenJobResult } from "../region/job-events.js";
import type { JobRequest } from "../region/job-request.js";
import { ledgerStub } from "./ledger-client.js";
import { holdFor, queueClassOf } from "./tiers.js";

/**
 * A request is about to wait in a Region's queue. If its key asked for a latency tier and its
 * linked credit covers the most the request can cost (max_tokens × the tier's price), that much
 * is set aside in the ledger and the request waits in the tier's place, ahead of the base tier;
 * the Region settles the hold when the job ends (region-credits.ts). Otherwise — no tier, no key,
 * too little credit, or the ledger unreachable — it waits in the place it already has (the base
 * tier). Only the queue path calls this, so a request that finds an idle tab costs no ledger call.
 */
export async function paidPlace(env: AppEnv, request: JobRequest): Promise<JobRequest> {
  if (!request.tier || !request.owner?.startsWith("key:")) return request;
  const keyId = request.owner.slice("key:".length);
  const amount = holdFor(readConfig(env).credits, request.tier, request.match.maxTokens);
  try {
    const held = await ledgerStub(env).hold(request.requestId, keyId, amount);
    return held ? { ...request, priority: queueClassOf(request.tier) } : request;
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
  if (asked === request) return open(request);
  const release = () =>
    ledgerStub(env)
      .settle(request.requestId, 0)
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
