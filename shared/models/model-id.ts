import { z } from "zod";

/**
 * What a model id may be wherever one is published: letters, digits, `.`, `_` and `-`, starting
 * with a letter or digit, at most 200 characters. Every WebLLM prebuilt id
 * ("Qwen2-0.5B-Instruct-q4f16_1-MLC") and every id `npm run models:add` accepts fits it. Tabs
 * announce the models they serve (shared/protocol/node-messages.ts), and the listings
 * (GET /v1/models, /v1/status/models, /metrics labels) publish those names as ids, so markup,
 * control and bidirectional-formatting characters would otherwise reach everyone who shows the list.
 */
export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export const ModelIdSchema = z
  .string()
  .regex(MODEL_ID_PATTERN, "a model id is 1-200 of A-Z a-z 0-9 . _ - (no leading . _ -)");
