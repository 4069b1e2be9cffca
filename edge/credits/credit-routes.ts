import { Hono, type Context } from "hono";
import {
  LinkRequestSchema,
  NameRequestSchema,
  linkText,
  nameText,
  sanitizeDisplayName,
} from "../../shared/credits/credit-proofs.js";
import { verifyStatement } from "../auth/link-proof.js";
import { readConfig } from "../config.js";
import type { AppContext } from "../env.js";
import { AddressBuckets, type AddressBucket } from "../http/address-buckets.js";
import { ApiError } from "../http/api-error.js";
import { parseJsonBody } from "../http/json-body.js";
import { publicNodeId } from "../region/public-id.js";
import { ledgerStub } from "./ledger-client.js";
import type { ProofOutcome } from "./ledger-do.js";
import { TIER_HEADER } from "./tiers.js";
import { requestAddressKey } from "../http/address-key.js";

/** The signed statements are a few hundred bytes; anything much larger is not one. */
const MAX_PROOF_BODY_BYTES = 4 * 1024;

/**
 * POST /v1/credits/name needs no API key, so no key's limits bound it, and each request costs an
 * ECDSA verification and a call to the one Ledger object. Per address, in this isolate's memory
 * (AddressBuckets, as the failed-authentication limit counts): NAME_PROOF_BURST at once, then
 * NAME_PROOFS_PER_MIN a minute; past that 429 before the body is read. A contributor sets a name
 * once in a while (the ledger takes one change a minute per identity); an address flooding made-up
 * proofs (or replaying one) is held to a few verifications a minute per isolate.
 */
export const NAME_PROOF_BURST = 10;
export const NAME_PROOFS_PER_MIN = 5;
const nameProofs = new AddressBuckets<AddressBucket>(NAME_PROOF_BURST, NAME_PROOFS_PER_MIN);

/** Take one of the address's name proofs, or refuse it (429) when it has none left. */
function takeNameProof(ip: string, now = Date.now()): void {
  const b = nameProofs.get(ip, now, true) ?? { tokens: NAME_PROOF_BURST, at: now };
  const allowed = b.tokens >= 1;
  if (allowed) b.tokens -= 1;
  nameProofs.put(ip, b);
  if (allowed) return;
  const retryS = nameProofs.secondsToOne(b);
  throw new ApiError(
    429,
    "rate_limit_error",
    `Too many name proofs from this address (limit ${NAME_PROOF_BURST}, then ${NAME_PROOFS_PER_MIN} per minute); retry after ${retryS} s.`,
    null,
    "rate_limit_exceeded",
    { "retry-after": String(retryS) },
  );
}

/**
 * The credit API (docs/credits.md):
 * - POST /v1/credits/link (API key as Bearer): link a tab identity to the caller's key, on a
 *   statement the tab signed with its identity key naming this key's id;
 * - POST /v1/credits/name: an identity's opt-in display name on the public list (signed too);
 * - GET /v1/credits/key (API key as Bearer): what the key can spend, and the price table;
 * - GET /v1/credits/tiers: the price table.
 */
export function creditRoutes() {
  const app = new Hono<AppContext>();

  app.post("/credits/link", async (c) => {
    const keyId = keyIdOf(c);
    const body = await parseJsonBody(c, LinkRequestSchema, MAX_PROOF_BODY_BYTES);
    const proof = await verifyStatement(body, linkText(keyId, body.signedAt));
    if (!proof.ok) throw refused(proof.reason);
    const result = await ledgerStub(c.env).link(proof.identity, keyId, body.signedAt);
    refuseUnless(result);
    const publicId = await publicNodeId(proof.identity);
    return c.json({ object: "credit.link", public_id: publicId, key_id: keyId, linked: true });
  });

  app.post("/credits/name", async (c) => {
    // By the address's limit key (an IPv6 address by its /64, http/address-key.ts), as every
    // per-address limit: one /64 must not get a fresh bucket per address.
    takeNameProof(requestAddressKey(c.req.raw.headers));
    const body = await parseJsonBody(c, NameRequestSchema, MAX_PROOF_BODY_BYTES);
    const proof = await verifyStatement(body, nameText(body.name, body.signedAt));
    if (!proof.ok) throw refused(proof.reason);
    const name = body.name === null ? null : sanitizeDisplayName(body.name);
    if (body.name !== null && name === null) {
      throw new ApiError(
        400,
        "invalid_request_error",
        "The name has nothing showable: use letters, digits, spaces or . - _ '.",
        "name",
        "invalid_value",
      );
    }
    const result = await ledgerStub(c.env).setName(proof.identity, name, body.signedAt);
    refuseUnless(result);
    const publicId = await publicNodeId(proof.identity);
    return c.json({ object: "credit.name", public_id: publicId, name });
  });

  app.get("/credits/key", async (c) => {
    const keyId = keyIdOf(c);
    const account = await ledgerStub(c.env).keyAccount(keyId);
    return c.json({
      object: "credit.key",
      key_id: keyId,
      balance: account.balance,
      held: account.held,
      available: account.available,
      identities: account.identities,
      tiers: tierTable(c),
    });
  });

  app.get("/credits/tiers", (c) => c.json({ object: "list", data: tierTable(c) }));

  return app;
}

/** The price table as the API shows it (config: edge/config.ts `credits`). */
function tierTable(c: Context<AppContext>) {
  const { credits } = readConfig(c.env);
  return [
    {
      tier: "interactive",
      header: `${TIER_HEADER}: interactive`,
      queue_place: 1,
      latency_budget_ms: credits.interactiveBudgetMs,
      price_per_token: credits.price.interactive,
    },
    {
      tier: "batch",
      header: `${TIER_HEADER}: batch`,
      queue_place: 2,
      latency_budget_ms: null,
      price_per_token: credits.price.batch,
    },
    { tier: "base", header: null, queue_place: 3, latency_budget_ms: null, price_per_token: 0 },
  ];
}

function keyIdOf(c: Context<AppContext>): string {
  const owner = c.get("caller")?.owner;
  if (!owner?.startsWith("key:")) {
    throw new ApiError(
      401,
      "authentication_error",
      "Credit belongs to an API key: send Authorization: Bearer <key>.",
      null,
      "missing_api_key",
    );
  }
  return owner.slice("key:".length);
}

function refused(reason: string): ApiError {
  return new ApiError(
    403,
    "permission_error",
    `The identity proof was refused: ${reason}.`,
    "signature",
    "invalid_identity_proof",
  );
}

function refuseUnless(outcome: ProofOutcome): void {
  if (outcome === "stale") {
    throw new ApiError(
      409,
      "invalid_request_error",
      "A newer signed statement for this identity was already taken; sign a fresh one.",
      "signedAt",
      "stale_proof",
    );
  }
  if (outcome === "too_soon") {
    throw new ApiError(
      429,
      "rate_limit_error",
      "The display name changes at most once a minute; retry later.",
      "name",
      "rate_limit_exceeded",
      { "retry-after": "60" },
    );
  }
  if (outcome === "unknown") {
    throw new ApiError(
      404,
      "not_found_error",
      "No contributor account for this identity: contribute from this tab first.",
      "publicKey",
      "unknown_identity",
    );
  }
}
