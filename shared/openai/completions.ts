import { z } from "zod";
import { CommonRequestFields } from "./request-fields.js";
import { UsageSchema } from "../protocol/job.js";

/** POST /v1/completions: a plain-text prompt, no chat template. */
export const CompletionRequestSchema = z.object({
  ...CommonRequestFields,
  prompt: z.union([
    z.string(),
    z
      .array(z.string())
      .length(1, { error: "only one prompt per request is supported" })
      .transform((a) => a[0] as string),
  ]),
  echo: z.literal(false, { error: "echo is not supported" }).nullish(),
  logprobs: z.null({ error: "logprobs are not supported" }).optional(),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

const CompletionChoice = z.object({
  index: z.number().int(),
  text: z.string(),
  finish_reason: z.enum(["stop", "length"]).nullable(),
  logprobs: z.null(),
});

/** Both the non-streaming body and each streamed chunk use `object: "text_completion"`. */
export const CompletionSchema = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(CompletionChoice),
  usage: UsageSchema.nullable().optional(),
});
export type Completion = z.infer<typeof CompletionSchema>;
