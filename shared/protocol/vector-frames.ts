import { encodeVector } from "./embedding-vectors.js";
import { MAX_FRAME_BYTES, type TabMessage } from "./node-messages.js";

/** Base64 characters of vectors per `job.vectors` frame: the rest of a frame is a few dozen bytes. */
const VECTOR_CHARS_PER_FRAME = MAX_FRAME_BYTES - 4096;

/**
 * The `job.vectors` frames of an answer: vectors in input order, as many per frame as fit under
 * the coordinator's frame limit (base64 is ASCII, so characters are bytes).
 */
export function vectorFrames(
  jobId: string,
  vectors: readonly ArrayLike<number>[],
): Extract<TabMessage, { type: "job.vectors" }>[] {
  const frames: Extract<TabMessage, { type: "job.vectors" }>[] = [];
  let current: string[] = [];
  let chars = 0;
  let index = 0;
  for (const v of vectors) {
    const text = encodeVector(v);
    if (current.length && chars + text.length + 3 > VECTOR_CHARS_PER_FRAME) {
      frames.push({ type: "job.vectors", jobId, index, vectors: current });
      index += current.length;
      current = [];
      chars = 0;
    }
    current.push(text);
    chars += text.length + 3;
  }
  if (current.length) frames.push({ type: "job.vectors", jobId, index, vectors: current });
  return frames;
}
