import Dexie, { type Table } from "dexie";
import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  challengeText,
  nodeIdFromPublicKey,
  toBase64url,
} from "../../shared/protocol/node-identity.js";
import type { TabIdentity } from "./contributor.js";

interface StoredKey {
  /** The stored row's key; "node" is kept so existing keys stay readable. */
  name: "node";
  pair: CryptoKeyPair;
  created: number;
}

/** Its own small database: the key must survive a reset of the ledger or settings. */
class IdentityDb extends Dexie {
  keys!: Table<StoredKey, string>;
  constructor(name: string) {
    super(name);
    this.version(1).stores({ keys: "name" });
  }
}

/**
 * The tab's identity: an ECDSA P-256 key pair generated with WebCrypto, the private key
 * non-extractable (script can use it to sign but never read it), kept in IndexedDB so reloads and
 * reconnects keep the same tab id (`nodeId` on the wire). Where IndexedDB is unavailable (some private modes) the key
 * lives for this page only; where WebCrypto is unavailable the tab connects without an identity.
 */
export function browserTabIdentity(dbName = "tabgrid-identity"): TabIdentity {
  let pair: Promise<CryptoKeyPair> | null = null;
  const load = async (): Promise<CryptoKeyPair> => {
    try {
      const db = new IdentityDb(dbName);
      const stored = await db.keys.get("node");
      if (stored) return stored.pair;
      const fresh = await generate();
      await db.keys.put({ name: "node", pair: fresh, created: Date.now() });
      return fresh;
    } catch {
      return generate();
    }
  };
  return {
    async prove(nonce) {
      if (!globalThis.crypto?.subtle) return null;
      pair ??= load();
      const keys = await pair;
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
      const signature = new Uint8Array(
        await crypto.subtle.sign(
          SIGNATURE_ALGORITHM,
          keys.privateKey,
          new TextEncoder().encode(challengeText(nonce)),
        ),
      );
      return {
        nodeId: await nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d)),
        identity: { publicKey: toBase64url(spki), signature: toBase64url(signature) },
      };
    },
  };
}

/**
 * Sign a statement about this tab's credit (shared/credits/credit-proofs.ts) with the stored
 * identity key. Null when this browser has no stored identity yet (it never contributed) or no
 * WebCrypto: there is then no credit to act on.
 */
export async function signWithStoredIdentity(
  text: string,
  dbName = "tabgrid-identity",
): Promise<{ publicKey: string; signature: string } | null> {
  if (!globalThis.crypto?.subtle) return null;
  const stored = await new IdentityDb(dbName).keys.get("node").catch(() => undefined);
  if (!stored) return null;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", stored.pair.publicKey));
  const signature = await crypto.subtle.sign(
    SIGNATURE_ALGORITHM,
    stored.pair.privateKey,
    new TextEncoder().encode(text),
  );
  return { publicKey: toBase64url(spki), signature: toBase64url(new Uint8Array(signature)) };
}

async function generate(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(IDENTITY_ALGORITHM, false, ["sign", "verify"]);
}
