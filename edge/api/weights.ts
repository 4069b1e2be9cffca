import { Hono, type Context } from "hono";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { AppContext, AppEnv } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { hostedModels } from "../model-catalog.js";

/**
 * Model files served from the operator's own origin (docs/deploy.md: Self-hosted models), so that
 * contributors load weights and the model library from the coordinator and the network depends on
 * no third party. The files live in the `WEIGHTS` R2 bucket (locally: wrangler's simulated R2,
 * persisted with the rest of the state), put there by `npm run models:add`:
 *
 *   models/<model_id>/<file>        mlc-chat-config.json, tokenizer files, ndarray-cache.json,
 *                                   params_shard_N.bin
 *   models/<model_id>/lib/<file>    the compiled model library (.wasm)
 *   catalog.json                    the hosted models (HostedModel[]), merged into GET /v1/catalog
 *
 * and are served as a Hugging Face style repository, the layout WebLLM reads:
 * `GET /v1/weights/<model_id>/resolve/main/<file>` and `GET /v1/weights/<model_id>/lib/<file>`,
 * whole or by one byte range, streamed from R2 (never buffered), with CORS for tabs embedded on
 * other sites.
 */

/** One path segment: no slashes, no dot-dot, a bounded length. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

const TYPES: Record<string, string> = {
  json: "application/json",
  wasm: "application/wasm",
  bin: "application/octet-stream",
  model: "application/octet-stream",
  txt: "text/plain; charset=utf-8",
};

function contentType(file: string): string {
  return TYPES[file.split(".").pop() ?? ""] ?? "application/octet-stream";
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "range, if-none-match",
  "access-control-expose-headers": "content-length, content-range, etag, accept-ranges",
};

/** The hosted models, as catalog records on `origin` (empty without the bucket or catalog). */
export async function hostedRecords(env: AppEnv, origin: string): Promise<ModelRecord[]> {
  return (await hostedModels(env)).map(({ library, ...m }) => ({
    ...m,
    model: `${origin}/v1/weights/${m.model_id}`,
    model_lib: `${origin}/v1/weights/${m.model_id}/lib/${library}`,
  }));
}

/**
 * One `bytes=` range of a file of `size` bytes, as R2 reads it; null when the header asks for
 * none (or for several, which we answer whole, as RFC 9110 allows); "unsatisfiable" past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { offset: number; length: number } | null | "unsatisfiable" {
  const m = header?.trim().match(/^bytes=(\d*)-(\d*)$/);
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const suffix = Math.min(Number(m[2]), size);
    return suffix > 0 ? { offset: size - suffix, length: suffix } : "unsatisfiable";
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { offset: start, length: end - start + 1 };
}

async function serve(c: Context<AppContext>, key: string, file: string): Promise<Response> {
  const bucket = c.env.WEIGHTS;
  if (!bucket)
    throw new ApiError(
      404,
      "not_found_error",
      "This coordinator hosts no model files (no WEIGHTS bucket bound).",
      null,
      "weights_not_configured",
    );
  const head = await bucket.head(key);
  if (!head)
    throw new ApiError(
      404,
      "not_found_error",
      `No hosted file ${file}.`,
      null,
      "weights_not_found",
    );
  const headers: Record<string, string> = {
    ...CORS,
    "content-type": contentType(file),
    "accept-ranges": "bytes",
    etag: head.httpEtag,
    // Files of a model id do not change in place (models:add replaces a model as a whole), but
    // an operator may re-add one: cache for a day, revalidate by ETag after.
    "cache-control": "public, max-age=86400",
  };
  if (c.req.header("if-none-match") === head.httpEtag)
    return new Response(null, { status: 304, headers });
  const range = parseRange(c.req.header("range"), head.size);
  if (range === "unsatisfiable")
    return new Response(null, {
      status: 416,
      headers: { ...headers, "content-range": `bytes */${head.size}` },
    });
  const status = range ? 206 : 200;
  const length = range ? range.length : head.size;
  if (range)
    headers["content-range"] =
      `bytes ${range.offset}-${range.offset + range.length - 1}/${head.size}`;
  headers["content-length"] = String(length);
  if (c.req.method === "HEAD") return new Response(null, { status, headers });
  const obj = await bucket.get(key, range ? { range } : {});
  if (!obj)
    throw new ApiError(
      404,
      "not_found_error",
      `No hosted file ${file}.`,
      null,
      "weights_not_found",
    );
  return new Response(obj.body, { status, headers });
}

function names(c: Context<AppContext>): { model: string; file: string } {
  const model = c.req.param("model") ?? "";
  const file = c.req.param("file") ?? "";
  for (const [what, value] of [
    ["model id", model],
    ["file name", file],
  ] as const) {
    if (!NAME.test(value) || value.includes(".."))
      throw new ApiError(400, "invalid_request_error", `Invalid ${what}.`, null, "invalid_path");
  }
  return { model, file };
}

/** GET/HEAD /v1/weights/:model/resolve/main/:file and /v1/weights/:model/lib/:file. */
export function weightRoutes() {
  const app = new Hono<AppContext>();
  app.options("/weights/*", () => new Response(null, { status: 204, headers: CORS }));
  app.on(["GET", "HEAD"], "/weights/:model/resolve/main/:file", (c) => {
    const { model, file } = names(c);
    return serve(c, `models/${model}/${file}`, file);
  });
  app.on(["GET", "HEAD"], "/weights/:model/lib/:file", (c) => {
    const { model, file } = names(c);
    return serve(c, `models/${model}/lib/${file}`, file);
  });
  return app;
}
