import { z } from "zod";

/**
 * What a served chat model can do through Tabgrid's API. Tools and structured output work the same
 * way on every chat model: grammar-constrained JSON decoding in the tab (WebLLM + xgrammar), with
 * tool calls assembled by the coordinator (edge/openai/tool-calls.ts), hence "grammar".
 */
export const ModelCapabilitiesSchema = z.object({
  chat: z.boolean(),
  completions: z.boolean(),
  tools: z.enum(["grammar", "native", "none"]),
  structured_output: z.enum(["grammar", "none"]),
  embeddings: z.boolean(),
  logprobs: z.boolean(),
  /** Largest `n` accepted. */
  max_n: z.number().int().positive(),
});
export type ModelCapabilities = z.infer<typeof ModelCapabilitiesSchema>;

export const CHAT_MODEL_CAPABILITIES: ModelCapabilities = {
  chat: true,
  completions: true,
  tools: "grammar",
  structured_output: "grammar",
  embeddings: false,
  logprobs: false,
  max_n: 1,
};

/** GET /v1/models: the models some connected tab serves now, in OpenAI's shape. */
export const ModelObjectSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.number().int(),
  owned_by: z.string(),
  /** Tabgrid extension: what the model can do through this API. */
  capabilities: ModelCapabilitiesSchema.optional(),
  /** Tabgrid extension: context window in tokens, from the catalog record; null when unknown. */
  context_window: z.number().int().positive().nullable().optional(),
  /** Tabgrid extension: how many tabs serve it and how many of them are idle. */
  tabgrid: z.object({ nodes: z.number().int(), idle: z.number().int() }).optional(),
});
export const ModelListSchema = z.object({
  object: z.literal("list"),
  data: z.array(ModelObjectSchema),
});
export type ModelList = z.infer<typeof ModelListSchema>;
export type ModelObject = z.infer<typeof ModelObjectSchema>;
