import type { Context } from "hono";
import type { z } from "zod";
import { paramFromPath } from "../../shared/openai/errors.js";
import { ApiError } from "./api-error.js";

/** Largest request body accepted, in bytes as sent (UTF-8), so a huge body cannot exhaust memory. */
export const MAX_BODY_BYTES = 1024 * 1024;

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(
    413,
    "invalid_request_error",
    `Request body exceeds ${maxBytes} bytes.`,
    null,
    "request_too_large",
  );
}

/**
 * Read a request body as text, counting bytes while reading and stopping at `maxBytes`: neither
 * `content-length` (absent when chunked, and only a claim) nor the decoded string's length (UTF-16
 * units: 1M × "€" is 3 MB) is trusted, and a 20 MB body costs at most `maxBytes` of reading.
 */
export async function readBodyText(request: Request, maxBytes = MAX_BODY_BYTES): Promise<string> {
  // A declared length over the limit is refused without reading; a smaller one is not believed.
  const declared = Number(request.headers.get("content-length") ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel("request body too large").catch(() => {});
      throw tooLarge(maxBytes);
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  return parts.join("");
}

/**
 * Read and validate a JSON body with a shared schema. Every failure is a 400 in OpenAI's shape that
 * names the offending field (`param`), never a 500; a body over `maxBytes` (MAX_BODY_BYTES unless a
 * route asks for less) is a 413.
 */
export async function parseJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  maxBytes = MAX_BODY_BYTES,
): Promise<z.infer<S>> {
  const text = await readBodyText(c.req.raw, maxBytes);
  // Later readers (the fallback forwards the body) use Hono's cache, since the stream is consumed.
  (c.req.bodyCache as Record<string, Promise<unknown>>).text = Promise.resolve(text);
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
