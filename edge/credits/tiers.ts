import type { Caller } from "../auth/authenticate.js";
import type { Config } from "../config.js";
import { ApiError } from "../http/api-error.js";
import { QueueClass } from "../../shared/scheduling/wait-queue.js";

/**
 * Latency tiers an API key may ask for with the `x-tabgrid-tier` header (docs/credits.md):
 * - `interactive`: a latency budget (the request's own, or `credits.interactiveBudgetMs` for time
 *   to first token) and, while requests wait, the first place in the queue;
 * - `batch`: no budget; waits ahead of the base tier.
 * Both are paid in credit the key's linked tabs earned. A request that asks for neither, or whose
 * key lacks the credit, gets the base tier: the same tabs when one is idle, and a place in the
 * queue behind every paid request (keyless requests come last).
 */
export type Tier = "interactive" | "batch";
export const TIERS: readonly Tier[] = ["interactive", "batch"];

export const TIER_HEADER = "x-tabgrid-tier";

/** The tier a request asks for (null: none). A tier needs an API key: credit is a key's. */
export function requestedTier(header: string | undefined, keyed: boolean): Tier | null {
  if (header === undefined || header === "") return null;
  const tier = header.trim().toLowerCase();
  if (!TIERS.includes(tier as Tier)) {
    throw new ApiError(
      400,
      "invalid_request_error",
      `${TIER_HEADER} must be one of: ${TIERS.join(", ")}.`,
      TIER_HEADER,
      "invalid_value",
    );
  }
  if (!keyed) {
    throw new ApiError(
      401,
      "authentication_error",
      `${TIER_HEADER} needs an API key whose linked tabs earned credit (docs/credits.md).`,
      TIER_HEADER,
      "tier_needs_key",
    );
  }
  return tier as Tier;
}

/**
 * The queue class of every request before it buys a place (queue-place.ts): a key's base tier, or
 * the keyless tier after it. Chat, completions and embeddings all start here; only a hold moves a
 * job into a paid class.
 */
export function baseQueueClass(caller: Pick<Caller, "tier">): QueueClass {
  return caller.tier === "key" ? QueueClass.key : QueueClass.anonymous;
}

/** The queue class a tier's paid place is. */
export function queueClassOf(tier: Tier): QueueClass {
  return tier === "interactive" ? QueueClass.interactive : QueueClass.batch;
}

/** Credits per completion token a job of this queue class pays (0: base and keyless). */
export function priceOfClass(credits: Config["credits"], cls: number): number {
  if (cls === QueueClass.interactive) return credits.price.interactive;
  if (cls === QueueClass.batch) return credits.price.batch;
  return 0;
}

/** What a request of `maxTokens` sets aside to take the tier's place: its most possible cost. */
export function holdFor(credits: Config["credits"], tier: Tier, maxTokens: number): number {
  return maxTokens * priceOfClass(credits, queueClassOf(tier));
}
