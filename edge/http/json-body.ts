import type { Context } from "hono";
import type { z } from "zod";
import { paramFromPath } from "../../shared/openai/errors.js";
import { ApiError } from "./api-error.js";

/** Largest request body accepted, before parsing, so a huge body cannot exhaust memory. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Read and validate a JSON body with a shared schema. Every failure is a 400 in OpenAI's shape that
 * names the offending field (`param`), never a 500.
 */
export async function parseJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
): Promise<z.infer<S>> {
  const length = Number(c.req.header("content-length") ?? "0");
  if (length > MAX_BODY_BYTES) {
    throw new ApiError(
      413,
      "invalid_request_error",
      `Request body exceeds ${MAX_BODY_BYTES} bytes.`,
    );
  }
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) {
    throw new ApiError(
      413,
      "invalid_request_error",
      `Request body exceeds ${MAX_BODY_BYTES} bytes.`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_request_error", "Request body is not valid JSON.");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue ? paramFromPath(issue.path) : null;
    throw new ApiError(
      400,
      "invalid_request_error",
      `Invalid ${param ?? "body"}: ${issue?.message ?? "invalid value"}`,
      param,
      "invalid_value",
    );
  }
  return parsed.data;
}
