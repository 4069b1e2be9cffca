import { z } from "zod";
import { CommonRequestFields } from "./request-fields.js";
import { UsageSchema } from "../protocol/job.js";

/** OpenAI content may be a string or an array of parts; Tabgrid's text models accept text parts. */
const ContentSchema = z.union([
  z.string(),
  z
    .array(
      z.object({
        type: z.literal("text", { error: "only text content parts are supported" }),
        text: z.string(),
      }),
    )
    .transform((parts) => parts.map((p) => p.text).join("")),
]);

export const ChatRequestMessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: ContentSchema.nullish().transform((c) => c ?? ""),
  name: z.string().optional(),
});

export const MAX_MESSAGES = 256;

export const ChatCompletionRequestSchema = z.object({
  ...CommonRequestFields,
  messages: z.array(ChatRequestMessageSchema).min(1).max(MAX_MESSAGES),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

/** Response of a non-streaming chat completion (`object: "chat.completion"`). */
export const ChatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal("assistant"), content: z.string() }),
      finish_reason: z.enum(["stop", "length"]).nullable(),
      logprobs: z.null(),
    }),
  ),
  usage: UsageSchema,
});
export type ChatCompletion = z.infer<typeof ChatCompletionSchema>;

/** One SSE `data:` payload of a streaming chat completion. */
export const ChatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
      finish_reason: z.enum(["stop", "length"]).nullable(),
      logprobs: z.null(),
    }),
  ),
  usage: UsageSchema.nullable().optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunkSchema>;
