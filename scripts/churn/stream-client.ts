import { performance } from "node:perf_hooks";
import { sseData } from "../../web/sdk/sse.js";

/** How one streaming request ended, as the client saw it. */
export type Outcome =
  | "done" // `data: [DONE]` after a finish_reason
  | "error_event" // an `error` event in the stream (the job failed after it started)
  | "http_error" // a non-200 answer before any stream (e.g. 503 no_capacity)
  | "cut_off" // the stream ended with neither [DONE] nor an error event
  | "timeout"
  | "fetch_failed";

export interface ClientResult {
  index: number;
  jobId: string | null;
  outcome: Outcome;
  text: string;
  /**
   * Token log-probability entries the stream carried (OpenAI's `choices[0].logprobs.content`), for
   * a request that asked for them; 0 otherwise.
   */
  logprobEntries: number;
  status: number;
  error?: string;
  startedAt: number;
  endedAt: number;
}

/**
 * POST /v1/chat/completions with `stream: true` and read the server-sent events with fetch and
 * the SDK's reader (web/sdk/sse.ts), the way any OpenAI-compatible client does: content deltas
 * are concatenated, `[DONE]` ends the answer, an `{"error": …}` event ends it with an error.
 */
export async function streamChat(
  origin: string,
  index: number,
  body: Record<string, unknown>,
  timeoutMs: number,
): Promise<ClientResult> {
  const startedAt = performance.now();
  const result: ClientResult = {
    index,
    jobId: null,
    outcome: "cut_off",
    text: "",
    logprobEntries: 0,
    status: 0,
    startedAt,
    endedAt: startedAt,
  };
  const finish = (outcome: Outcome, error?: string): ClientResult => {
    result.outcome = outcome;
    if (error !== undefined) result.error = error;
    result.endedAt = performance.now();
    return result;
  };
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
    result.status = res.status;
    result.jobId = res.headers.get("x-tabgrid-job-id");
    if (res.status !== 200 || !res.body) {
      return finish("http_error", (await res.text()).slice(0, 300));
    }
    for await (const data of sseData(res.body)) {
      if (data === "[DONE]") return finish("done");
      const json = JSON.parse(data) as {
        error?: { message?: string; code?: string };
        choices?: Array<{
          delta?: { content?: string };
          logprobs?: { content?: unknown[] | null } | null;
        }>;
      };
      if (json.error) return finish("error_event", `${json.error.code}: ${json.error.message}`);
      result.text += json.choices?.[0]?.delta?.content ?? "";
      result.logprobEntries += json.choices?.[0]?.logprobs?.content?.length ?? 0;
    }
    return finish("cut_off");
  } catch (e) {
    if (signal.aborted) return finish("timeout");
    return finish("fetch_failed", String(e));
  }
}
