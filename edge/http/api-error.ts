import type { OpenAIErrorBody, OpenAIErrorType } from "../../shared/openai/errors.js";
import type { JobError, JobErrorCode } from "../../shared/protocol/job.js";

/**
 * The one error type of the HTTP API. Routes throw it; `errorResponse` (on-error.ts) is the single
 * place that turns it into OpenAI's error JSON with the request id.
 */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 426 | 429 | 500 | 502 | 503 | 504,
    readonly type: OpenAIErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** OpenAI's error JSON for an ApiError; `request_id` repeats the x-request-id header. */
  toBody(requestId: string): OpenAIErrorBody {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
        request_id: requestId,
      },
    };
  }
}

/** Seconds a client should wait before retrying when every capable tab is busy. */
export const BUSY_RETRY_AFTER_S = 2;

/** Map a job's typed failure (from the Region object or a tab) to the HTTP error a client sees. */
export function apiErrorFromJob(error: JobError): ApiError {
  const table: Record<JobErrorCode, () => ApiError> = {
    model_not_served: () =>
      new ApiError(404, "not_found_error", error.message, "model", "model_not_found"),
    no_capacity: () =>
      new ApiError(503, "service_unavailable", error.message, null, "no_capacity", {
        "retry-after": String(error.retryAfterS ?? BUSY_RETRY_AFTER_S),
      }),
    over_budget: () =>
      new ApiError(503, "service_unavailable", error.message, null, "latency_budget_unmet"),
    queue_full: () =>
      new ApiError(429, "rate_limit_error", error.message, null, "queue_full", {
        "retry-after": String(error.retryAfterS ?? BUSY_RETRY_AFTER_S),
      }),
    bad_request: () => new ApiError(400, "invalid_request_error", error.message),
    engine_error: () => new ApiError(502, "server_error", error.message, null, "engine_error"),
    device_lost: () => new ApiError(502, "server_error", error.message, null, "device_lost"),
    node_gone: () => new ApiError(502, "server_error", error.message, null, "node_gone"),
    cancelled: () => new ApiError(409, "invalid_request_error", error.message, null, "cancelled"),
    job_not_found: () => new ApiError(404, "not_found_error", error.message, null, "job_not_found"),
    internal: () => new ApiError(500, "server_error", error.message, null, "internal"),
    invalid_structured_output: () =>
      new ApiError(502, "server_error", error.message, null, "invalid_structured_output"),
  };
  return table[error.code]();
}
