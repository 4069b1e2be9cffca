import { z } from "zod";
import { MAX_EMBEDDING_INPUTS } from "../protocol/embedding-vectors.js";
import type { ModelCapabilities } from "./models.js";
import { utf8ByteLength } from "../protocol/frames.js";
import { noUnknownFields } from "./request-fields.js";
import { MAX_MODEL_BYTES, MAX_USER_BYTES, boundedString } from "./string-limits.js";

/**
 * POST /v1/embeddings in OpenAI's shape. Every field of OpenAI's request is honoured or refused
 * with a 400 naming it; unknown fields are refused (docs/api.md, "Embeddings").
 */

/**
 * One input, in UTF-8 bytes. The served models read at most 512 tokens; this is room for that at
 * any plausible token length, and keeps a job frame and the tab's work bounded.
 */
export const MAX_EMBEDDING_INPUT_BYTES = 16 * 1024;

const TOKEN_ARRAYS =
  "token arrays are not accepted: send text (a string or an array of strings); tabs tokenize it with the model's own tokenizer";

/** Why one input is refused, or null. */
function inputProblem(v: unknown): string | null {
  if (typeof v === "number" || Array.isArray(v)) return TOKEN_ARRAYS;
  if (typeof v !== "string") return "each input must be a string";
  if (!v.length) return "an input must not be empty";
  if (v.length > MAX_EMBEDDING_INPUT_BYTES || utf8ByteLength(v) > MAX_EMBEDDING_INPUT_BYTES)
    return `an input may have at most ${MAX_EMBEDDING_INPUT_BYTES} bytes (UTF-8)`;
  return null;
}

/** A string, or an array of 1..MAX_EMBEDDING_INPUTS strings; each problem names its input. */
const InputSchema = z.unknown().superRefine((value, ctx) => {
  if (!Array.isArray(value)) {
    const why =
      typeof value === "string"
        ? inputProblem(value)
        : "input must be a string or an array of strings";
    if (why) ctx.addIssue({ code: "custom", message: why });
    return;
  }
  if (value.length === 0 || value.length > MAX_EMBEDDING_INPUTS) {
    ctx.addIssue({
      code: "custom",
      message: `input must hold 1 to ${MAX_EMBEDDING_INPUTS} strings`,
    });
    return;
  }
  // Token ids ([1, 2, 3]) are one input, refused as a whole.
  if (value.every((v) => typeof v === "number")) {
    ctx.addIssue({ code: "custom", message: TOKEN_ARRAYS });
    return;
  }
  for (const [i, v] of value.entries()) {
    const why = inputProblem(v);
    if (why) ctx.addIssue({ code: "custom", message: why, path: [i] });
  }
});

export const EmbeddingRequestSchema = z
  .object({
    model: boundedString(MAX_MODEL_BYTES, 1),
    input: InputSchema,
    encoding_format: z
      .enum(["float", "base64"], { error: "encoding_format must be 'float' or 'base64'" })
      .nullish(),
    /** Honoured only as the model's own length: these models cannot shorten their vectors. */
    dimensions: z.number().int().positive().nullish(),
    /** An end-user id: written to the coordinator's log with the request id, never sent to tabs. */
    user: boundedString(MAX_USER_BYTES).nullish(),
  })
  .catchall(noUnknownFields)
  .transform((req) => ({
    ...req,
    inputs: typeof req.input === "string" ? [req.input] : (req.input as string[]),
  }));
export type EmbeddingRequest = z.infer<typeof EmbeddingRequestSchema>;

export const EmbeddingObjectSchema = z.object({
  object: z.literal("embedding"),
  index: z.number().int().nonnegative(),
  /** float: the values; base64: little-endian float32 bytes (shared/protocol/embedding-vectors.ts). */
  embedding: z.union([z.array(z.number()), z.string()]),
});

export const EmbeddingResponseSchema = z.object({
  object: z.literal("list"),
  data: z.array(EmbeddingObjectSchema),
  model: z.string(),
  usage: z.object({
    prompt_tokens: z.number().int().nonnegative(),
    total_tokens: z.number().int().nonnegative(),
  }),
});
export type EmbeddingResponse = z.infer<typeof EmbeddingResponseSchema>;

/** What an embedding model can do through Tabgrid's API (GET /v1/models `capabilities`). */
export const EMBEDDING_MODEL_CAPABILITIES: ModelCapabilities = {
  chat: false,
  completions: false,
  tools: "none",
  structured_output: "none",
  embeddings: true,
  logprobs: false,
  max_n: 1,
};
