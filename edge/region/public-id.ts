/**
 * A tab's nodeId is its identity on reconnect, so listings show a digest of it instead: stable for
 * the same tab, useless for impersonating it.
 */
export async function publicNodeId(nodeId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(nodeId));
  return [...new Uint8Array(digest).slice(0, 6)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
