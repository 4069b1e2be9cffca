import * as z from "zod/mini";

/**
 * What the browser SDK reads from the coordinator's HTTP API: stream chunks, whole completions
 * (chat and plain text) and error bodies, checked with `zod/mini` (tree-shakable, so the SDK inside
 * embed.js stays small). Only the fields the SDK uses are required; the server's full schemas are in shared/openai/.
 */
const usage = z.object({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
});
const finish = z.nullable(z.optional(z.enum(["stop", "length", "tool_calls", "content_filter"])));

export const WireChunkSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      delta: z.object({ role: z.optional(z.literal("assistant")), content: z.nullish(z.string()) }),
      finish_reason: finish,
    }),
  ),
  usage: z.nullish(usage),
});
export type WireChunk = z.infer<typeof WireChunkSchema>;

export const WireCompletionSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      message: z.object({ role: z.literal("assistant"), content: z.nullable(z.string()) }),
      finish_reason: finish,
    }),
  ),
  usage: z.optional(usage),
});
export type WireCompletion = z.infer<typeof WireCompletionSchema>;

export const WireErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.nullish(z.string()),
    code: z.nullish(z.string()),
    request_id: z.optional(z.string()),
  }),
});
export type WireError = z.infer<typeof WireErrorSchema>;

/** POST /v1/completions (plain text): every streamed chunk and the whole body share one shape. */
export const WireTextCompletionSchema = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.number(),
  model: z.string(),
  choices: z.array(z.object({ index: z.number(), text: z.string(), finish_reason: finish })),
  usage: z.nullish(usage),
});
export type WireTextCompletion = z.infer<typeof WireTextCompletionSchema>;
