import { paramFromPath } from "../../shared/openai/errors.js";
import { JobSpecSchema } from "../../shared/protocol/job.js";
import { ApiError } from "../http/api-error.js";
import { log } from "../http/log.js";
import type { JobRequest } from "../region/job-request.js";

/**
 * The job as a tab will parse it (`job.assign`), without the id its Region object mints. A tab
 * ignores a frame its schema refuses, so a job it cannot read would sit until its lease ran out
 * and count as that honest tab's failure; checked here instead, before any Region object or tab
 * sees it, for every job the Worker opens (chat, completions, embeddings: `openJob`).
 */
const TabJobSchema = JobSpecSchema.omit({ id: true });

/**
 * Where the API's request fields land in a job: a value the API accepts but the protocol cannot
 * carry is refused as the client's field (400 naming it, as every refused field is). The rest of
 * a job is the coordinator's own making (messages as the template sees them, the constraint, the
 * client's place), so a failure there is a bug of ours: 500.
 */
const CLIENT_FIELDS: Record<string, string> = {
  model: "model",
  "sampling.max_tokens": "max_tokens",
  "sampling.temperature": "temperature",
  "sampling.top_p": "top_p",
  "sampling.seed": "seed",
  "sampling.stop": "stop",
  "sampling.presence_penalty": "presence_penalty",
  "sampling.frequency_penalty": "frequency_penalty",
  "sampling.logit_bias": "logit_bias",
  "sampling.logprobs": "top_logprobs",
  "direct.peerId": "tabgrid.peer_id",
  "input.prompt": "prompt",
  "input.inputs": "input",
};

/**
 * Throws unless a tab would accept `request.job`. Either way the mismatch between the API's
 * schemas and the protocol's is logged as an error: every client value the API takes should be
 * one a tab takes.
 */
export function checkTabJob(request: JobRequest): void {
  const parsed = TabJobSchema.safeParse(request.job);
  if (parsed.success) return;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const param = clientParam(path);
  log("error", "job refused by the tab protocol", {
    requestId: request.requestId,
    at: paramFromPath(path),
    problem: issue.message,
    param,
  });
  if (param) {
    throw new ApiError(
      400,
      "invalid_request_error",
      `${param}: this value cannot be passed on to the tabs (${issue.message}).`,
      param,
      "invalid_value",
    );
  }
  throw new ApiError(
    500,
    "server_error",
    "The coordinator built a job its tabs could not read; this is a bug on our side, logged with the request id.",
    null,
    "internal",
  );
}

/** The request field a job's path comes from, in OpenAI's notation (`stop[2]`); null if none. */
function clientParam(path: Array<string | number>): string | null {
  for (const n of [2, 1]) {
    const field = CLIENT_FIELDS[path.slice(0, n).join(".")];
    if (field) return paramFromPath([field, ...path.slice(n)]);
  }
  return null;
}
