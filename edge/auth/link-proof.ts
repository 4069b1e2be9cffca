import { PROOF_WINDOW_MS } from "../../shared/credits/credit-proofs.js";
import { verifySignedText, type SignatureCheck } from "./signed-text.js";

export type ProofCheck = SignatureCheck;

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
  return verifySignedText(proof, text);
}
