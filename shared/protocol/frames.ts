import type { z } from "zod";

/**
 * Parsing one WebSocket frame, shared by every channel (contributor tabs, signalling, the tab's own
 * client side). Size limits are in bytes as they travel, i.e. UTF-8: a string's `length` counts
 * UTF-16 units, so 600 KB of 3-byte characters is only 200 K units long and would slip past a
 * 256 KB limit measured that way.
 */
export type FrameResult<T> =
  | { ok: true; msg: T }
  /** `tooLarge` failures close with the channel's FrameTooLarge code, the rest with BadFrame. */
  | { ok: false; reason: string; tooLarge?: boolean };

/** UTF-8 byte length of a string without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** True when the frame is larger than `maxBytes` on the wire; cheap for frames far from the limit. */
export function frameTooLarge(raw: string | ArrayBuffer, maxBytes: number): boolean {
  if (typeof raw !== "string") return raw.byteLength > maxBytes;
  // Every UTF-16 unit is 1–3 bytes, so most frames are decided without counting.
  if (raw.length > maxBytes) return true;
  if (raw.length * 3 <= maxBytes) return false;
  return utf8ByteLength(raw) > maxBytes;
}

/** Parse one text frame within `maxBytes`; a typed message or a reason for the close frame. */
export function parseFrame<T>(
  schema: z.ZodType<T>,
  raw: string | ArrayBuffer,
  maxBytes: number,
): FrameResult<T> {
  if (frameTooLarge(raw, maxBytes)) {
    return { ok: false, reason: `frame too large (limit ${maxBytes} bytes)`, tooLarge: true };
  }
  if (typeof raw !== "string") return { ok: false, reason: "binary frames are not accepted" };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "frame is not JSON" };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? issue.path.join(".") : "frame";
    // Close reasons are limited to 123 bytes by the WebSocket spec; closeSocket trims by bytes.
    return { ok: false, reason: `${where}: ${issue?.message ?? "invalid"}`.slice(0, 120) };
  }
  return { ok: true, msg: parsed.data };
}
