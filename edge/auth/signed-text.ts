import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  fromBase64url,
  nodeIdFromPublicKey,
} from "../../shared/protocol/node-identity.js";

export type SignatureCheck = { ok: true; identity: string } | { ok: false; reason: string };

/**
 * Check that `text` was signed with a contributor's identity key (ECDSA P-256, SPKI and signature
 * in base64url, as shared/protocol/node-identity.ts makes them) and return the identity the key
 * proves: the tab id, derived from the key. The hello proof (verify-identity.ts) and the credit
 * statements (link-proof.ts) both go through here, so they can never disagree on who a key is.
 */
export async function verifySignedText(
  proof: { publicKey: string; signature: string },
  text: string,
): Promise<SignatureCheck> {
  const spki = fromBase64url(proof.publicKey);
  const signature = fromBase64url(proof.signature);
  if (!spki || !signature) return { ok: false, reason: "proof is not base64url" };
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
    new TextEncoder().encode(text),
  );
  if (!valid) return { ok: false, reason: "signature does not verify with this public key" };
  return {
    ok: true,
    identity: await nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d)),
  };
}
