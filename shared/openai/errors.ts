import { z } from "zod";

/**
 * OpenAI's error body. `request_id` repeats the `x-request-id` response header so a pasted error
 * can be found in the coordinator's logs.
 */
export const OpenAIErrorTypeSchema = z.enum([
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "rate_limit_error",
  "server_error",
  "service_unavailable",
]);
export type OpenAIErrorType = z.infer<typeof OpenAIErrorTypeSchema>;

export const OpenAIErrorBodySchema = z.object({
  error: z.object({
    message: z.string(),
    type: OpenAIErrorTypeSchema,
    param: z.string().nullable(),
    code: z.string().nullable(),
    request_id: z.string().optional(),
  }),
});
export type OpenAIErrorBody = z.infer<typeof OpenAIErrorBodySchema>;

/** Turn a zod issue path into OpenAI's `param` notation: `messages[0].content`. */
export function paramFromPath(path: ReadonlyArray<PropertyKey>): string | null {
  if (!path.length) return null;
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
