/** Response headers the SDK reads across origins (job id for resume, request id for errors). */
export const EXPOSED_HEADERS = [
  "x-request-id",
  "x-tabgrid-job-id",
  "x-tabgrid-job-token",
  "x-tabgrid-node",
  "x-tabgrid-region",
  "x-tabgrid-served-by",
  "retry-after",
] as const;
