import { z } from "zod";

/** GET /v1/models: the models some connected tab serves now. */
export const ModelObjectSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.number().int(),
  owned_by: z.string(),
  /** Tabgrid extension: how many tabs serve it and how many of them are idle. */
  tabgrid: z.object({ nodes: z.number().int(), idle: z.number().int() }).optional(),
});
export const ModelListSchema = z.object({
  object: z.literal("list"),
  data: z.array(ModelObjectSchema),
});
export type ModelList = z.infer<typeof ModelListSchema>;
export type ModelObject = z.infer<typeof ModelObjectSchema>;
