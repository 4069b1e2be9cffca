import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  challengeText,
  fromBase64url,
  nodeIdFromPublicKey,
} from "../../shared/protocol/node-identity.js";
import type { Hello } from "../../shared/protocol/node-messages.js";

/**
 * Check a hello's identity proof against the nonce this socket was challenged with. Returns the
 * node id the key proves, or why it failed.
 */
export async function verifyIdentity(
  identity: NonNullable<Hello["identity"]>,
  claimedNodeId: string | undefined,
  nonce: string,
): Promise<{ ok: true; nodeId: string } | { ok: false; reason: string }> {
  const spki = fromBase64url(identity.publicKey);
  const signature = fromBase64url(identity.signature);
  if (!spki || !signature) return { ok: false, reason: "identity is not base64url" };
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("spki", spki, IDENTITY_ALGORITHM, false, ["verify"]);
  } catch {
    return { ok: false, reason: "public key is not an ECDSA P-256 SPKI" };
  }
  const valid = await crypto.subtle.verify(
    SIGNATURE_ALGORITHM,
    key,
    signature,
    new TextEncoder().encode(challengeText(nonce)),
  );
  if (!valid) return { ok: false, reason: "challenge signature does not verify" };
  const nodeId = await nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d));
  if (claimedNodeId !== undefined && claimedNodeId !== nodeId) {
    return { ok: false, reason: "nodeId does not belong to this key" };
  }
  return { ok: true, nodeId };
}
