import { z } from "zod";
import { utf8ByteLength } from "../protocol/frames.js";

/**
 * Bounds on every string (and string collection) a client sends on the API, so no field can carry
 * an unbounded amount to a tab or into the coordinator's logs. Sizes are UTF-8 bytes, as on the
 * wire (docs/limits.md). Free text the model reads (message content, tool call arguments, prompts)
 * is bounded by the request body limit (1 MiB, edge/http/json-body.ts) instead: it is the request.
 * Each refusal is a 400 whose `param` names the field (e.g. `stop[2]`, `tools[0].function.parameters`).
 */
export const MAX_MODEL_BYTES = 256;
export const MAX_STOP_SEQUENCES = 4;
/** One stop sequence: stop strings are short (a template's end marker, a delimiter). */
export const MAX_STOP_BYTES = 256;
/** `user`, `safety_identifier`: an end-user id, logged with the request id. */
export const MAX_USER_BYTES = 256;
/** A message's `name` (OpenAI: a participant name). */
export const MAX_NAME_BYTES = 64;
/** A tool's or a response format's `description`. */
export const MAX_DESCRIPTION_BYTES = 8 * 1024;
/** One JSON schema (a tool's `parameters`, `response_format.json_schema.schema`), as JSON. */
export const MAX_SCHEMA_BYTES = 32 * 1024;
/** Nesting depth of one JSON schema (objects and arrays). */
export const MAX_SCHEMA_DEPTH = 32;
/** Entries of `logit_bias`. */
export const MAX_LOGIT_BIAS = 1024;
/** Id of a tool call / `tool_call_id`. */
export const MAX_TOOL_CALL_ID_BYTES = 200;

/**
 * A string of at most `max` UTF-8 bytes (and at least `min` characters). A string longer than `max`
 * UTF-16 units is over in bytes too, so a huge one is refused without being counted.
 */
export function boundedString(max: number, min = 0) {
  return z
    .string()
    .min(min)
    .refine((s) => s.length <= max && utf8ByteLength(s) <= max, {
      error: `at most ${max} bytes (UTF-8)`,
    });
}

/** Depth of nested objects/arrays in `value`, counted without recursion (stops past `limit`). */
export function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 0 }];
  while (stack.length) {
    const { v, d } = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    const depth = d + 1;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push({ v: child, d: depth });
  }
  return deepest;
}

/**
 * The first size problem of a JSON schema (bytes as JSON, then depth), or null. Checked before the
 * schema is walked for enforceability, so that walk only ever sees a small schema.
 */
export function schemaSizeProblem(schema: unknown): string | null {
  const depth = jsonDepth(schema, MAX_SCHEMA_DEPTH);
  if (depth > MAX_SCHEMA_DEPTH) return `a JSON schema may nest at most ${MAX_SCHEMA_DEPTH} levels`;
  const bytes = utf8ByteLength(JSON.stringify(schema) ?? "");
  if (bytes > MAX_SCHEMA_BYTES) {
    return `a JSON schema may be at most ${MAX_SCHEMA_BYTES} bytes as JSON (this one is ${bytes})`;
  }
  return null;
}
