import type { AppEnv } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { log } from "../http/log.js";

/**
 * Hybrid edge→cloud: forward the client's own request body to the configured OpenAI-compatible
 * upstream and stream its answer back unchanged, marked `x-tabgrid-served-by: fallback`. Two
 * changes only: `model` may be rewritten (FALLBACK_MODEL), because the upstream's names differ
 * from WebLLM's, and Tabgrid's own `tabgrid` object (latency budget, resume grace, the web SDK's
 * `peer_id`) is left out, because OpenAI refuses a parameter it does not define.
 */
export async function forwardToFallback(
  env: AppEnv,
  path: "chat/completions" | "completions",
  body: Record<string, unknown>,
  requestId: string,
  signal: AbortSignal,
): Promise<Response> {
  const base = (env.FALLBACK_URL ?? "").replace(/\/+$/, "");
  const { tabgrid: _own, ...openai } = body;
  const upstreamBody = env.FALLBACK_MODEL ? { ...openai, model: env.FALLBACK_MODEL } : openai;
  let res: Response;
  try {
    res = await fetch(`${base}/${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(env.FALLBACK_API_KEY ? { authorization: `Bearer ${env.FALLBACK_API_KEY}` } : {}),
      },
      body: JSON.stringify(upstreamBody),
      signal,
    });
  } catch (err) {
    log("warn", "fallback upstream unreachable", { requestId, error: String(err) });
    throw new ApiError(
      502,
      "server_error",
      "No tab could take the request and the fallback upstream is unreachable.",
      null,
      "upstream_unreachable",
    );
  }
  log("info", "served by fallback", { requestId, status: res.status });
  const headers = new Headers({ "x-tabgrid-served-by": "fallback" });
  for (const name of ["content-type", "cache-control", "retry-after"]) {
    const value = res.headers.get(name);
    if (value) headers.set(name, value);
  }
  return new Response(res.body, { status: res.status, headers });
}
