import { parseFrame, frameTooLarge, type FrameResult } from "./frames.js";
import {
  JobDeltaSchema,
  NodeMessageType,
  TabMessageSchema,
  type TabMessage,
} from "./node-messages.js";
import type { z } from "zod";

type JobDelta = z.infer<typeof JobDeltaSchema>;

/**
 * Longest `jobId` and `text` JobDeltaSchema allows. zod counts code points once a string is over
 * the bound in UTF-16 units; the fast path checks units only, and leaves a string over the bound
 * in units (rare: an answer piece of 64 Ki units) to zod.
 */
const MAX_JOB_ID = 64;
const MAX_DELTA_TEXT = 64 * 1024;

/**
 * A `job.delta` frame checked by hand: every field and bound of JobDeltaSchema (type, jobId 1–64
 * units, seq and offset non-negative safe integers, text ≤ 64 Ki), at a fraction of zod's
 * cost on the coordinator's hottest path (one per token frame). It only ever accepts: anything it
 * is not sure of — another type, a missing or bad field, a key the schema does not name (zod would
 * strip it) — gives null, and the caller parses with the full schema, which decides and words the
 * refusal as before. So it accepts exactly a subset of what the schema accepts, with the same
 * value (fast-frames.test.ts checks both on fuzzed frames).
 */
export function fastJobDelta(json: unknown): JobDelta | null {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return null;
  const o = json as Record<string, unknown>;
  if (o.type !== NodeMessageType.JobDelta) return null;
  const { jobId, seq, text, offset } = o;
  if (typeof jobId !== "string" || jobId.length < 1 || jobId.length > MAX_JOB_ID) return null;
  if (!isCount(seq)) return null;
  if (typeof text !== "string" || text.length > MAX_DELTA_TEXT) return null;
  let keys = 4;
  if ("offset" in o) {
    if (!isCount(offset)) return null;
    keys = 5;
  }
  // Own keys only, and none the schema would strip (checked last: it is the slowest check).
  if (Object.getPrototypeOf(o) !== Object.prototype || Object.keys(o).length !== keys) return null;
  return keys === 5
    ? { type: NodeMessageType.JobDelta, jobId, seq, text, offset: offset as number }
    : { type: NodeMessageType.JobDelta, jobId, seq, text };
}

/** zod's `z.number().int().nonnegative()` (zod 4's `int` means a safe integer). */
function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parse one frame from a tab within `maxBytes`: `job.delta` through the hand-checked fast path,
 * everything else (and any delta it is unsure of) through TabMessageSchema. Same results as
 * `parseFrame(TabMessageSchema, raw, maxBytes)`.
 */
export function parseTabFrame(
  raw: string | ArrayBuffer,
  maxBytes: number,
): FrameResult<TabMessage> {
  if (
    typeof raw === "string" &&
    raw.startsWith('{"type":"job.delta"') &&
    !frameTooLarge(raw, maxBytes)
  ) {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { ok: false, reason: "frame is not JSON" };
    }
    const delta = fastJobDelta(json);
    if (delta) return { ok: true, msg: delta };
  }
  return parseFrame(TabMessageSchema, raw, maxBytes);
}
