import { SignalCloseCode, type PeerServerMessage } from "../../shared/protocol/peerjs-messages.js";

/**
 * Refuse a signalling socket the way peerjs-server does: accept it, send one typed message the
 * `peerjs` client understands (ERROR, ID-TAKEN, INVALID-KEY), then close with a typed code. Used by
 * the Worker (ids that were never issued: no object is touched) and by the Signal object.
 */
export function refuseSocket(msg: PeerServerMessage, code: number, reason: string): Response {
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  server.send(JSON.stringify(msg));
  server.close(code, reason);
  return new Response(null, { status: 101, webSocket: client });
}

/** The ERROR message and close for `reason` (the message's text is the close reason). */
export function refuseWithError(code: number, reason: string): Response {
  return refuseSocket({ type: "ERROR", payload: { msg: reason } }, code, reason);
}

/**
 * The refusal of a socket whose id the server did not issue (4403 NotIssued) or issued but has
 * expired (4411 Expired: the page fetches a fresh id); null for an id that may connect.
 */
export function refuseUnissued(check: "issued" | "expired" | "not_issued"): Response | null {
  if (check === "expired") {
    return refuseWithError(
      SignalCloseCode.Expired,
      "This id has expired; get a fresh one from GET /v1/signal/peerjs/id",
    );
  }
  if (check === "not_issued") {
    return refuseWithError(SignalCloseCode.NotIssued, "This id was not issued by this server");
  }
  return null;
}
