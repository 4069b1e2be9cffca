import { z } from "zod";
import {
  CommonRequestFields,
  checkStreamOptions,
  closedObject,
  noUnknownFields,
  onlyDefault,
  refused,
} from "./request-fields.js";
import { UsageSchema } from "../protocol/job.js";

/** POST /v1/completions: a plain-text prompt, no chat template. */
export const CompletionRequestSchema = z
  .object({
    ...CommonRequestFields,
    prompt: z.union([
      z.string(),
      z
        .array(z.string())
        .length(1, { error: "only one prompt per request is supported" })
        .transform((a) => a[0] as string),
    ]),
    echo: onlyDefault(false, "echo is not supported"),
    logprobs: refused(
      "logprobs are returned by /v1/chat/completions only (logprobs: true, top_logprobs up to 5)",
    ),
    best_of: onlyDefault(1, "best_of is not supported: each answer comes from one tab"),
    suffix: refused("suffix (fill-in-the-middle) is not supported"),
  })
  .catchall(noUnknownFields)
  .superRefine(checkStreamOptions);
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
