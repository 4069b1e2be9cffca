/**
 * What a tab link (socket-bridge.ts) and its Region object (region-do.ts) say to each other on top
 * of the tab's own frames: a batch of the tab's frames as one message, and the Region's
 * acknowledgement that it handled one. Between link and Region only: the tab never sees either, so
 * the tab protocol (shared/protocol/version.ts) is unchanged.
 *
 * Why batches: the Region's cost per token frame was mostly the runtime's cost per WebSocket message
 * event (docs/scale.md, "Cheaper token frames"); one message carrying many of a tab's frames is one
 * event. Why acknowledgements: the link sends its next batch when the Region has handled the last
 * one (frame-batcher.ts), so batches grow with the Region's load and no timer is needed.
 *
 * A batch is `BATCH_PREFIX` followed by, for each frame, its length in UTF-16 units in decimal, a
 * colon and the frame. The prefix starts with U+0001, which no JSON text starts with; a tab frame
 * that starts with it anyway is still sent inside a batch by its link (frames are never sent bare
 * but for pings and binary frames), so the Region reads it as one frame and refuses it as a bad
 * frame: a tab cannot forge a batch or smuggle frames past its link's budget.
 */
export const BATCH_PREFIX = "\u0001tg-batch:";

/** The Region's acknowledgement of one batch. The Region's own frames are JSON, never this. */
export const BATCH_ACK = "\u0001tg-ack";

/** A batch holds at most this many frames (the rest wait for the next one). */
export const MAX_BATCH_FRAMES = 256;
/**
 * A batch holds at most this many UTF-16 units of frames: ≤ 768 KiB of UTF-8 with its headers,
 * under the runtime's 1 MiB WebSocket message limit. One frame (≤ MAX_FRAME_BYTES) always fits.
 */
export const MAX_BATCH_UNITS = 256 * 1024;

export function encodeBatch(frames: readonly string[]): string {
  let out = BATCH_PREFIX;
  for (const frame of frames) out += `${frame.length}:${frame}`;
  return out;
}

/**
 * The frames of a batch; null when `raw` is not a batch (a bare frame), "malformed" when it starts
 * like one but does not parse (only a broken link could send that: the Region refuses it as a bad
 * frame).
 */
export function decodeBatch(raw: string | ArrayBuffer): string[] | null | "malformed" {
  if (typeof raw !== "string" || !raw.startsWith(BATCH_PREFIX)) return null;
  const frames: string[] = [];
  let at = BATCH_PREFIX.length;
  while (at < raw.length) {
    const colon = raw.indexOf(":", at);
    if (colon <= at || colon - at > 7) return "malformed";
    const digits = raw.slice(at, colon);
    if (!/^(0|[1-9][0-9]*)$/.test(digits)) return "malformed";
    const end = colon + 1 + Number(digits);
    if (end > raw.length) return "malformed";
    frames.push(raw.slice(colon + 1, end));
    at = end;
  }
  return frames.length > 0 ? frames : "malformed";
}
