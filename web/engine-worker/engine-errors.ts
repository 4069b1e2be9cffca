import { EngineError, type EngineErrorCode } from "../engine/inference-engine.js";

/**
 * Errors that mean the cached files are damaged (a partial download, a truncated shard or JSON
 * file, a shard of the wrong size) rather than the network or the GPU.
 */
export const CACHE_DAMAGE =
  /Unexpected end of JSON|JSON\.parse|is not valid JSON|ArtifactCache|NDArrayCache|ndarray-cache|size mismatch|byteLength|out of bounds|Offset is outside|Failed to fetch .* from cache|incomplete|truncated|corrupt/i;

/**
 * WebLLM's error classes (0.2.86) for a request this model cannot take: a chat prompt or an
 * embedding input longer than its context window, an input that is no tokens at all.
 */
const REQUEST_FAULTS = new Set([
  "ContextWindowSizeExceededError",
  "EmbeddingExceedContextWindowSizeError",
  "EmbeddingInputEmptyError",
]);

/** WebLLM throws its own error classes; keep the class name and message, add our code. */
export function toEngineError(err: unknown, fallback: EngineErrorCode): EngineError {
  if (err instanceof EngineError) return err;
  const name = err instanceof Error ? err.name : "";
  const message = err instanceof Error ? err.message : String(err);
  if (/out of memory|OutOfMemory|failed to allocate|allocation failed/i.test(message)) {
    return new EngineError("out_of_memory", `The GPU ran out of memory. (${message})`);
  }
  if (name === "DeviceLostError" || /device (was |is )?lost/i.test(message)) {
    return new EngineError(
      "device_lost",
      `The GPU device was lost (often out of GPU memory). Reload the page, or pick a smaller model. (${message})`,
    );
  }
  if (REQUEST_FAULTS.has(name)) {
    // WebLLM's words for a request the model cannot take as asked: every tab serving the model
    // would say the same, so it is the request's fault (the coordinator's `bad_request`, which
    // reaches the client once a second independent tab agrees) — not an engine failure that
    // counts against this tab.
    return new EngineError("bad_request", `${name}: ${message}`);
  }
  return new EngineError(fallback, name && name !== "Error" ? `${name}: ${message}` : message);
}
