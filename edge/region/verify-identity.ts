import { challengeText } from "../../shared/protocol/node-identity.js";
import type { Hello } from "../../shared/protocol/node-messages.js";
import { verifySignedText } from "../auth/signed-text.js";

/**
 * Check a hello's identity proof against the nonce this socket was challenged with. Returns the
 * node id the key proves, or why it failed.
 */
export async function verifyIdentity(
  identity: NonNullable<Hello["identity"]>,
  claimedNodeId: string | undefined,
  nonce: string,
): Promise<{ ok: true; nodeId: string } | { ok: false; reason: string }> {
  const check = await verifySignedText(identity, challengeText(nonce));
  if (!check.ok) return check;
  if (claimedNodeId !== undefined && claimedNodeId !== check.identity) {
    return { ok: false, reason: "nodeId does not belong to this key" };
  }
  return { ok: true, nodeId: check.identity };
}
