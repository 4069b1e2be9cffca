import { z } from "zod";
import {
  MAX_LOGIT_BIAS,
  MAX_MODEL_BYTES,
  MAX_STOP_BYTES,
  MAX_STOP_SEQUENCES,
  MAX_USER_BYTES,
  boundedString,
} from "./string-limits.js";

/**
 * Fields common to /v1/chat/completions and /v1/completions, with OpenAI's ranges.
 *
 * No silent drops: every field of OpenAI's request schema is either honoured or refused with 400
 * naming it (`param`), and a field OpenAI does not define is refused too (see `noUnknownFields`),
 * except the documented `tabgrid` object. docs/api.md lists each field and what happens to it.
 */
export const DEFAULT_MAX_TOKENS = 256;
export const MAX_MAX_TOKENS = 4096;
/** Default and ceiling of `tabgrid.resume_grace_ms`. */
export const DEFAULT_RESUME_GRACE_MS = 500;
export const MAX_RESUME_GRACE_MS = 60_000;
/**
 * Most answers (`n`) one request may ask for. Each answer is its own job on its own tab, so this
 * bounds how many tabs one request (one concurrency slot of its client) can occupy.
 */
export const MAX_CHOICES = 8;
/**
 * A request's latency budget (`tabgrid.latency_budget_ms`, or the `x-tabgrid-latency-budget-ms`
 * header for clients that cannot add body fields): one schema for both, up to 10 minutes.
 */
export const MAX_LATENCY_BUDGET_MS = 600_000;
export const LatencyBudgetMsSchema = z.number().int().positive().max(MAX_LATENCY_BUDGET_MS);

/** A field Tabgrid cannot honour: absent or null passes, anything else is a 400 naming it. */
export function refused(why: string) {
  return z.null({ error: why }).optional();
}

/** A field whose only honourable value is OpenAI's default (e.g. `n: 1`, `logprobs: false`). */
export function onlyDefault<T extends string | number | boolean>(value: T, why: string) {
  return z.literal(value, { error: why }).nullish();
}

/**
 * Refuse fields the schema does not define, each named in `param`. (zod's strict objects, and
 * `catchall(z.never())` which zod turns into one, report unknown keys with an empty path, which
 * would lose the name; a failing custom check keeps it.)
 */
export const noUnknownFields = z.custom<never>(() => false, {
  error:
    "unknown field: it is not part of OpenAI's API, and Tabgrid refuses it rather than ignore it",
});

/**
 * An object that refuses fields it does not define (400 naming each). Typed as a plain object: the
 * catch-all never lets an extra key through, so it adds nothing to the parsed value's type.
 */
export function closedObject<T extends z.core.$ZodLooseShape>(shape: T): z.ZodObject<T> {
  return z.object(shape).catchall(noUnknownFields) as unknown as z.ZodObject<T>;
}

export const CommonRequestFields = {
  model: boundedString(MAX_MODEL_BYTES, 1),
  max_tokens: z.number().int().min(1).max(MAX_MAX_TOKENS).nullish(),
  max_completion_tokens: z.number().int().min(1).max(MAX_MAX_TOKENS).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  /** Up to 4 stop sequences of at most 256 bytes each (string-limits.ts). */
  stop: z
    .union([
      boundedString(MAX_STOP_BYTES),
      z.array(boundedString(MAX_STOP_BYTES)).max(MAX_STOP_SEQUENCES),
    ])
    .nullish(),
  stream: z.boolean().nullish(),
  stream_options: z
    .object({
      include_usage: z.boolean().optional(),
      include_obfuscation: onlyDefault(
        false,
        "stream obfuscation is not offered: chunks carry no obfuscation padding",
      ),
    })
    .catchall(noUnknownFields)
    .nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  /** Token ids of the requested model's tokenizer (as OpenAI's), biases -100..100. */
  logit_bias: z
    .record(
      z.string().regex(/^\d{1,10}$/, "logit_bias keys are token ids (digits)"),
      z.number().min(-100).max(100),
    )
    .refine((bias) => Object.keys(bias).length <= MAX_LOGIT_BIAS, {
      error: `logit_bias may name at most ${MAX_LOGIT_BIAS} tokens`,
    })
    .nullish(),
  /** Answers to produce, each a job of its own (fanned out to several tabs when there are). */
  n: z.number().int().min(1).max(MAX_CHOICES).nullish(),
  /** An end-user id: written to the coordinator's log with the request id, never sent to tabs. */
  user: boundedString(MAX_USER_BYTES).nullish(),
  safety_identifier: boundedString(MAX_USER_BYTES).nullish(),
  store: onlyDefault(false, "Tabgrid does not store completions"),
  metadata: refused("metadata only applies to stored completions, which Tabgrid does not keep"),
  service_tier: z
    .enum(["auto", "default"], {
      error: "Tabgrid has one service tier; use 'auto' or 'default'",
    })
    .nullish(),
  /** Tabgrid extensions; ignored by other servers, so portable in request bodies. */
  tabgrid: z
    .object({
      latency_budget_ms: LatencyBudgetMsSchema.optional(),
      /** How long the job keeps running after the client's connection drops, so it can resume. */
      resume_grace_ms: z.number().int().min(0).max(MAX_RESUME_GRACE_MS).optional(),
      /** The caller's PeerJS peer id on /v1/signal: the tab also streams to it over WebRTC. */
      peer_id: z
        .string()
        .regex(/^tg-[a-z]{2,8}-[0-9a-f]{32}$/, "a peer id from GET /v1/signal/peerjs/id")
        .optional(),
    })
    .catchall(noUnknownFields)
    .optional(),
};

/** OpenAI refuses `stream_options` without `stream`; so does Tabgrid (as does WebLLM). */
export function checkStreamOptions(
  req: { stream?: boolean | null; stream_options?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (req.stream_options != null && !req.stream) {
    ctx.addIssue({
      code: "custom",
      path: ["stream_options"],
      message: "stream_options is only allowed when stream is true",
    });
  }
}

export function normaliseStop(stop: string | string[] | null | undefined): string[] | undefined {
  if (stop == null) return undefined;
  const list = typeof stop === "string" ? [stop] : stop;
  return list.length ? list : undefined;
}
