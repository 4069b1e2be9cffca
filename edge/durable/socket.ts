import { utf8ByteLength } from "../../shared/protocol/frames.js";

export { parseFrame, frameTooLarge, type FrameResult } from "../../shared/protocol/frames.js";

/** Longest close reason the WebSocket protocol allows, in UTF-8 bytes. */
const MAX_REASON_BYTES = 123;

/**
 * Close codes that mean "no code" or "abnormal" in an event and may not be sent in a close frame;
 * echoing them back (in webSocketClose) becomes a normal close.
 */
const UNSENDABLE = new Set([1005, 1006, 1015]);

/** Cut `reason` to at most 123 UTF-8 bytes without splitting a character. */
export function closeReason(reason: string): string {
  if (reason.length * 3 <= MAX_REASON_BYTES || utf8ByteLength(reason) <= MAX_REASON_BYTES) {
    return reason;
  }
  let out = "";
  let bytes = 0;
  for (const ch of reason) {
    const n = utf8ByteLength(ch);
    if (bytes + n > MAX_REASON_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * Close a socket from a Durable Object; never throws (the socket may already be closed). Used both
 * to refuse (typed 4xxx codes) and, in `webSocketClose`, to close back so the other end sees a clean
 * close rather than 1006 (partyserver does the same).
 */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(UNSENDABLE.has(code) ? 1000 : code, closeReason(reason));
  } catch {
    // Already closed or closing.
  }
}
