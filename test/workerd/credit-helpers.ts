import { runInDurableObject, SELF } from "cloudflare:test";
import { hashKey, newApiKey } from "../../edge/auth/api-key.js";
import { clientStub } from "../../edge/auth/authenticate.js";
import type { LedgerOp } from "../../edge/credits/ledger-types.js";
import type { RegionParts } from "../../edge/region/region-parts.js";
import { regionStub } from "../../edge/region/region-stub.js";
import { linkText, nameText } from "../../shared/credits/credit-proofs.js";
import type { RegionHint } from "../../shared/geo/regions.js";
import type { CreditBalance } from "../../shared/protocol/node-messages.js";
import { SIGNATURE_ALGORITHM, toBase64url } from "../../shared/protocol/node-identity.js";
import type { ScriptedTab } from "./scripted-tab.js";
import { appEnv } from "./tab-helpers.js";

/**
 * What the credit tests share: API keys made the way the admin API makes them (without needing
 * its token), statements signed with a tab's identity key as the contributor page signs them,
 * and requests to the credit API.
 */

const ORIGIN = "http://tabgrid.test";

/** A real API key, stored in its Client object and the key directory. */
export async function testKey(): Promise<{ id: string; key: string }> {
  const { id, key } = newApiKey();
  const info = await clientStub(appEnv, `key:${id}`).createKey(id, await hashKey(key), "credit", {
    rpm: 10_000,
    concurrent: 100,
  });
  if (!info) throw new Error("key id taken");
  return { id, key };
}

export async function publicKeyOf(keys: CryptoKeyPair): Promise<string> {
  return toBase64url(
    new Uint8Array((await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer),
  );
}

/** Sign `text` with the tab's identity key (base64url, IEEE P1363). */
export async function sign(keys: CryptoKeyPair, text: string): Promise<string> {
  const sig = await crypto.subtle.sign(
    SIGNATURE_ALGORITHM,
    keys.privateKey,
    new TextEncoder().encode(text),
  );
  return toBase64url(new Uint8Array(sig));
}

/** The body of POST /v1/credits/link, signed by `signer` for key `keyId`, claiming `claimed`. */
export async function linkBody(
  signer: CryptoKeyPair,
  keyId: string,
  claimed: CryptoKeyPair = signer,
  signedAt = Date.now(),
) {
  return {
    publicKey: await publicKeyOf(claimed),
    signedAt,
    signature: await sign(signer, linkText(keyId, signedAt)),
  };
}

export async function nameBody(keys: CryptoKeyPair, name: string | null, signedAt = Date.now()) {
  return {
    publicKey: await publicKeyOf(keys),
    signedAt,
    name,
    signature: await sign(keys, nameText(name, signedAt)),
  };
}

export function creditPost(
  path: string,
  body: unknown,
  key?: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return SELF.fetch(`${ORIGIN}/v1/credits/${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

export interface KeyAccountBody {
  balance: number;
  held: number;
  available: number;
  identities: string[];
}

export async function keyAccount(key: string): Promise<KeyAccountBody> {
  const res = await SELF.fetch(`${ORIGIN}/v1/credits/key`, {
    headers: { authorization: `Bearer ${key}` },
  });
  if (res.status !== 200) throw new Error(`GET /v1/credits/key: ${res.status}`);
  return (await res.json()) as KeyAccountBody;
}

/** The next `credit.balance` the tab receives that satisfies `pred` (earlier ones are skipped). */
export async function balanceWhere(
  tab: ScriptedTab,
  pred: (b: CreditBalance) => boolean,
): Promise<CreditBalance> {
  for (;;) {
    const b = await tab.next("credit.balance");
    if (pred(b)) return b;
  }
}

/**
 * Wait for the ledger calls a Region object has started (credits, settlements): they run after
 * the job's end and are never awaited by it (edge/credits/region-credits.ts).
 */
export async function ledgerCallsDone(region: RegionHint = "wnam"): Promise<void> {
  await runInDurableObject(regionStub(appEnv, region), async (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    await parts.credits?.idle();
  });
}

/** Calls a Region's ledger outage refused (`failLedgerCalls`), by what each carried. */
export interface LedgerOutage {
  /** The kinds of operation in each refused call. */
  refused: Array<Array<LedgerOp["kind"]>>;
  /** The ledger answers every call from now on. */
  end(): void;
}

/**
 * The ledger cannot be reached from a Region for its next `times` calls whose operations satisfy
 * `when`: each such call rejects as an RPC to a resetting object does, and the Region's outbox must
 * send it again (edge/credits/ledger-outbox.ts). The real ledger answers every other call. A test
 * double only for the failure itself: a Durable Object's RPC failing cannot be caused on demand in
 * workerd; the outbox, its retry timer and the ledger are the real ones.
 */
export async function failLedgerCalls(
  times: number,
  when: (ops: LedgerOp[]) => boolean = () => true,
  region: RegionHint = "wnam",
): Promise<LedgerOutage> {
  let left = times;
  const outage: LedgerOutage = { refused: [], end: () => (left = 0) };
  await runInDurableObject(regionStub(appEnv, region), (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    const credits = parts.credits;
    if (!credits) throw new Error("this Region has no ledger");
    const real = credits.port;
    credits.port = {
      balance: (identity, publicId) => real.balance(identity, publicId),
      apply: (ops) => {
        if (left > 0 && when(ops)) {
          left -= 1;
          outage.refused.push(ops.map((op) => op.kind));
          return Promise.reject(new Error("Network connection lost."));
        }
        return real.apply(ops);
      },
    };
  });
  return outage;
}

/** Operations a Region's outbox holds for the ledger (0 once the ledger took everything). */
export function ledgerOutboxSize(region: RegionHint = "wnam"): Promise<number> {
  return runInDurableObject(regionStub(appEnv, region), (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    return parts.credits?.waiting ?? 0;
  });
}
