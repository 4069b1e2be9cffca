import { z } from "zod";
import { LogprobsRequestSchema } from "./logprobs.js";
import { MAX_EMBEDDING_DIMENSIONS, MAX_EMBEDDING_INPUTS } from "./embedding-vectors.js";

/**
 * A job as the coordinator hands it to a tab: the OpenAI request normalised into one shape for both
 * chat and plain-text completions, so the tab's engine sees one kind of input.
 */
export const ChatMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string(),
  /** OpenAI's participant name on user/assistant messages; the chat template may show it. */
  name: z.string().max(64).optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const SamplingSchema = z.object({
  max_tokens: z.number().int().positive(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  /**
   * 0..2^53 − 1: WebLLM's generator starts from `seed % (2^31 − 1)` and throws on a negative one.
   * The coordinator maps OpenAI's `seed` (any safe integer) into it (edge/openai/to-job.ts).
   */
  seed: z.number().int().nonnegative().optional(),
  stop: z.array(z.string()).max(4).optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  /** Token id (of the model's own tokenizer) to bias, -100..100, as OpenAI and WebLLM take it. */
  logit_bias: z.record(z.string().regex(/^\d+$/), z.number().min(-100).max(100)).optional(),
  /**
   * What decoding must produce. `json`: a JSON value matching `schema` (a JSON Schema the
   * coordinator checked is enforceable; see shared/openai/json-schema.ts), enforced by
   * grammar-constrained decoding. Absent: free text. It sits with the sampling fields because it
   * is a decoding parameter and reaches the engine unchanged with them.
   */
  constraint: z
    .object({ kind: z.literal("json"), schema: z.record(z.string(), z.unknown()) })
    .optional(),
  /** Return each token's log-probability and `top` alternatives (job.logprobs frames). */
  logprobs: LogprobsRequestSchema.optional(),
});
export type Sampling = z.infer<typeof SamplingSchema>;

/**
 * An embeddings job (since protocol 3, see version.ts): one vector per input, each of
 * `dimensions` values (the model's own vector length, from the catalog; the coordinator refuses
 * answers of any other length). Nothing is decoded: such a job carries `sampling: {max_tokens: 1}`
 * only because every job has sampling fields, and the answer comes back in `job.vectors` frames.
 */
export const EmbeddingInputSchema = z.object({
  kind: z.literal("embedding"),
  inputs: z.array(z.string().min(1)).min(1).max(MAX_EMBEDDING_INPUTS),
  dimensions: z.number().int().positive().max(MAX_EMBEDDING_DIMENSIONS),
});
export type EmbeddingInput = z.infer<typeof EmbeddingInputSchema>;

const ChatInputSchema = z.object({
  kind: z.literal("chat"),
  messages: z.array(ChatMessageSchema).min(1),
});
const CompletionInputSchema = z.object({ kind: z.literal("completion"), prompt: z.string() });

/** The inputs a model reads to write text (what audits re-score): every kind but embeddings. */
export const TextJobInputSchema = z.discriminatedUnion("kind", [
  ChatInputSchema,
  CompletionInputSchema,
]);
export type TextJobInput = z.infer<typeof TextJobInputSchema>;

export const JobInputSchema = z.discriminatedUnion("kind", [
  ChatInputSchema,
  CompletionInputSchema,
  EmbeddingInputSchema,
]);
export type JobInput = z.infer<typeof JobInputSchema>;

export const JobSpecSchema = z.object({
  id: z.string().min(1).max(64),
  model: z.string().min(1).max(200),
  input: JobInputSchema,
  sampling: SamplingSchema,
  /**
   * The caller asked for the direct path (`tabgrid.peer_id`): the serving tab also sends the text
   * over a WebRTC data channel to this PeerJS peer. The relay still carries every delta.
   */
  direct: z.object({ peerId: z.string().regex(/^tg-[a-z]{2,8}-[0-9a-f]{32}$/) }).optional(),
  /**
   * Roughly where the client is ("Frankfurt, DE"), from the coordinator's view of the request, so
   * the contributor sees whom it serves. City level only; absent when unknown.
   */
  clientPlace: z.string().max(100).optional(),
});
export type JobSpec = z.infer<typeof JobSpecSchema>;

export const UsageSchema = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  total_tokens: z.number().int().nonnegative(),
});
export type Usage = z.infer<typeof UsageSchema>;

export const FinishReasonSchema = z.enum(["stop", "length", "abort"]);
export type FinishReason = z.infer<typeof FinishReasonSchema>;

/** Error codes a job can end with; each maps to one HTTP status in edge/http/api-error.ts (apiErrorFromJob). */
export const JobErrorCodeSchema = z.enum([
  "model_not_served",
  "no_capacity",
  "engine_error",
  "device_lost",
  "node_gone",
  "cancelled",
  "bad_request",
  "job_not_found",
  "over_budget",
  "queue_full",
  "internal",
  /** The tabs' structured answers did not follow the request's schema (edge/region/structure-check.ts). */
  "invalid_structured_output",
]);
export type JobErrorCode = z.infer<typeof JobErrorCodeSchema>;

export const JobErrorSchema = z.object({
  code: JobErrorCodeSchema,
  message: z.string().max(2000),
  /** For queue_full / no_capacity: when a retry is worth it, in seconds. */
  retryAfterS: z.number().int().positive().max(3600).optional(),
});
export type JobError = z.infer<typeof JobErrorSchema>;
