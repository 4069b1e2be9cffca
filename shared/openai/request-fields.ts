import { z } from "zod";

/**
 * Sampling fields common to /v1/chat/completions and /v1/completions, with OpenAI's ranges.
 * Unknown fields are stripped (the `openai` client and others send extras we don't use), but fields
 * we cannot honour (n > 1, logprobs) are rejected with 400 naming the field rather than ignored.
 */
export const DEFAULT_MAX_TOKENS = 256;
export const MAX_MAX_TOKENS = 4096;
/** Default and ceiling of `tabgrid.resume_grace_ms`. */
export const DEFAULT_RESUME_GRACE_MS = 500;
export const MAX_RESUME_GRACE_MS = 60_000;

export const CommonRequestFields = {
  model: z.string().min(1).max(200),
  max_tokens: z.number().int().min(1).max(MAX_MAX_TOKENS).nullish(),
  max_completion_tokens: z.number().int().min(1).max(MAX_MAX_TOKENS).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1, { error: "only n=1 is supported: each answer comes from one tab" }).nullish(),
  user: z.string().max(256).optional(),
  /** Tabgrid extensions; ignored by other servers, so portable in request bodies. */
  tabgrid: z
    .object({
      latency_budget_ms: z.number().int().positive().max(600_000).optional(),
      /** How long the job keeps running after the client's connection drops, so it can resume. */
      resume_grace_ms: z.number().int().min(0).max(MAX_RESUME_GRACE_MS).optional(),
      /** The caller's PeerJS peer id on /v1/signal: the tab also streams to it over WebRTC. */
      peer_id: z
        .string()
        .regex(/^tg-[a-z]{2,8}-[0-9a-f]{32}$/, "a peer id from GET /v1/signal/peerjs/id")
        .optional(),
    })
    .optional(),
};

export function normaliseStop(stop: string | string[] | null | undefined): string[] | undefined {
  if (stop == null) return undefined;
  const list = typeof stop === "string" ? [stop] : stop;
  return list.length ? list : undefined;
}
