import type { WireError } from "../../shared/protocol/sdk-wire.js";

/**
 * Typed errors of the SDK, named like the official `openai` client's so code can switch on them:
 * every HTTP error is an `APIError` subclass chosen by status; a failure reported inside a stream
 * (after the status was sent) is mapped from its error `type`; network failures are
 * `APIConnectionError`; an AbortSignal firing is `APIUserAbortError`.
 */
export class TabgridError extends Error {
  override name = "TabgridError";
}

export class APIError extends TabgridError {
  override name = "APIError";
  constructor(
    readonly status: number | null,
    message: string,
    readonly type: string | null,
    readonly code: string | null,
    readonly param: string | null,
    readonly requestId: string | null,
    /** Seconds to wait before retrying (429 / 503), from Retry-After. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

export class BadRequestError extends APIError {
  override name = "BadRequestError";
}
export class AuthenticationError extends APIError {
  override name = "AuthenticationError";
}
export class PermissionDeniedError extends APIError {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends APIError {
  override name = "NotFoundError";
}
export class RateLimitError extends APIError {
  override name = "RateLimitError";
}
export class InternalServerError extends APIError {
  override name = "InternalServerError";
}
/** 503: no tab can take the job now (every one serving the model is busy); retry after a while. */
export class ServiceUnavailableError extends APIError {
  override name = "ServiceUnavailableError";
}

export class APIConnectionError extends TabgridError {
  override name = "APIConnectionError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class APIUserAbortError extends TabgridError {
  override name = "APIUserAbortError";
  constructor() {
    super("Request was aborted.");
  }
}

const BY_STATUS: Record<number, typeof APIError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  429: RateLimitError,
  503: ServiceUnavailableError,
};
const STATUS_OF_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  rate_limit_error: 429,
  server_error: 502,
  service_unavailable: 503,
};

/** The error for an OpenAI-shaped error body; `status` is null for one that arrived in a stream. */
export function apiError(
  status: number | null,
  body: WireError | null,
  requestId: string | null,
  retryAfter: number | null = null,
): APIError {
  const e = body?.error;
  const effective = status ?? (e ? (STATUS_OF_TYPE[e.type] ?? 500) : 500);
  const Cls = BY_STATUS[effective] ?? (effective >= 500 ? InternalServerError : APIError);
  return new Cls(
    status ?? effective,
    e?.message ?? `HTTP ${status}`,
    e?.type ?? null,
    e?.code ?? null,
    e?.param ?? null,
    e?.request_id ?? requestId,
    retryAfter,
  );
}
