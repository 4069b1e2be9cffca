import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  fromBase64url,
  nodeIdFromPublicKey,
} from "../../shared/protocol/node-identity.js";
import { PROOF_WINDOW_MS } from "../../shared/credits/credit-proofs.js";

export type ProofCheck = { ok: true; identity: string } | { ok: false; reason: string };

/**
 * Check a statement a contributor tab signed with its identity key (shared/credits/credit-proofs.ts):
 * the signature over `text` must verify with `publicKey`, and `signedAt` must be within
 * PROOF_WINDOW_MS of now. Returns the identity (the tab id) the key proves — the same derivation as
 * the hello proof (verify-identity.ts), so the account is the one the tab earns credit on.
 */
export async function verifyStatement(
  proof: { publicKey: string; signature: string; signedAt: number },
  text: string,
  now = Date.now(),
): Promise<ProofCheck> {
  if (Math.abs(now - proof.signedAt) > PROOF_WINDOW_MS) {
    return { ok: false, reason: "signedAt is too far from the coordinator's clock" };
  }
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
