import { Hono, type Context } from "hono";
import { ChatCompletionRequestSchema } from "../../shared/openai/chat.js";
import { CompletionRequestSchema } from "../../shared/openai/completions.js";
import { DEFAULT_RESUME_GRACE_MS } from "../../shared/openai/request-fields.js";
import type { AppContext } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { refuseEmbeddingModel } from "./embeddings.js";
import { forwardToFallback } from "../fallback/upstream.js";
import { parseJsonBody } from "../http/json-body.js";
import { requestLocation, requestPlace } from "../http/location.js";
import { log } from "../http/log.js";
import { collectJob, streamJob } from "../openai/job-response.js";
import { chatFormat, completionFormat, type ResponseFormat } from "../openai/response-format.js";
import { chatJob, completionJob, type JobInput } from "../openai/to-job.js";
import { planAnswer } from "../openai/tool-calls.js";
import type { JobRequest } from "../region/job-request.js";
import { jobStream } from "../region-client/job-stream.js";
import { openJob } from "../region-client/open-job.js";

interface RequestOptions {
  stream: boolean;
  includeUsage: boolean;
  resumeGraceMs: number;
  latencyBudgetMs: number | undefined;
}

type Kind = "chat/completions" | "completions";

/** POST /v1/chat/completions and POST /v1/completions: run a job on a tab, answer like OpenAI. */
export function inferenceRoutes() {
  const app = new Hono<AppContext>();

  app.post("/chat/completions", async (c) => {
    const req = await parseJsonBody(c, ChatCompletionRequestSchema);
    const plan = planAnswer(req);
    const chars = req.messages.reduce((n, m) => n + (m.content?.length ?? 0), 0);
    if (req.user || req.safety_identifier)
      log("info", "end user", {
        requestId: c.get("requestId"),
        user: req.safety_identifier ?? req.user,
      });
    return runJob(
      c,
      "chat/completions",
      chatJob(req, plan),
      (jobId, model) => chatFormat(jobId, model, plan.mode),
      chars,
      optionsOf(c, req),
    );
  });

  app.post("/completions", async (c) => {
    const req = await parseJsonBody(c, CompletionRequestSchema);
    return runJob(
      c,
      "completions",
      completionJob(req),
      completionFormat,
      req.prompt.length,
      optionsOf(c, req),
    );
  });

  return app;
}

function optionsOf(
  c: Context<AppContext>,
  req: {
    stream?: boolean | null;
    stream_options?: { include_usage?: boolean } | null;
    tabgrid?: { resume_grace_ms?: number; latency_budget_ms?: number };
  },
): RequestOptions {
  // Clients that cannot add body fields may send the budget as a header.
  const header = Number(c.req.header("x-tabgrid-latency-budget-ms"));
  if (
    c.req.header("x-tabgrid-latency-budget-ms") !== undefined &&
    !(Number.isInteger(header) && header > 0)
  ) {
    throw new ApiError(
      400,
      "invalid_request_error",
      "x-tabgrid-latency-budget-ms must be a positive integer (milliseconds).",
      "x-tabgrid-latency-budget-ms",
      "invalid_value",
    );
  }
  return {
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    resumeGraceMs: req.tabgrid?.resume_grace_ms ?? DEFAULT_RESUME_GRACE_MS,
    latencyBudgetMs: req.tabgrid?.latency_budget_ms ?? (header > 0 ? header : undefined),
  };
}

async function runJob(
  c: Context<AppContext>,
  kind: Kind,
  job: JobInput,
  formatFor: (jobId: string, model: string) => ResponseFormat,
  promptChars: number,
  opts: RequestOptions,
): Promise<Response> {
  refuseEmbeddingModel(c.env, job.model);
  const requestId = c.get("requestId");
  const caller = c.get("caller");
  const loc = requestLocation(c.req.raw, c.env);
  const clientPlace = requestPlace(c.req.raw, c.env);
  // Built once, without a region: whichever Region object takes it mints the job id.
  const request: JobRequest = {
    job: { ...job, ...(clientPlace ? { clientPlace } : {}) },
    requestId,
    owner: caller.owner,
    detachGraceMs: opts.resumeGraceMs,
    priority: caller.tier === "key" ? 0 : 1,
    match: {
      clientLocation: loc,
      promptTokens: Math.ceil(promptChars / 4),
      maxTokens: job.sampling.max_tokens,
      stream: opts.stream,
      ...(opts.latencyBudgetMs !== undefined ? { latencyBudgetMs: opts.latencyBudgetMs } : {}),
    },
  };
  const routed = await openJob(c.env, loc, request);
  if (routed.kind === "fallback") {
    log("info", "no tab in reach; using the fallback", { requestId, reason: routed.reason.code });
    const body = (await c.req.json()) as Record<string, unknown>;
    return forwardToFallback(c.env, kind, body, requestId, c.req.raw.signal);
  }
  const { opened, stub, region } = routed;
  log("info", "job started", { requestId, jobId: opened.jobId, region, tab: opened.tab });
  const init = {
    source: jobStream(c.env, stub, { jobId: opened.jobId, owner: caller.owner, from: 0 }, opened),
    format: formatFor(opened.jobId, job.model),
    includeUsage: opts.includeUsage,
    requestId,
    opening: true,
    headers: {
      "x-tabgrid-job-id": opened.jobId,
      "x-tabgrid-node": opened.tab,
      "x-tabgrid-region": region,
      "x-tabgrid-served-by": "tab",
    },
  };
  return opts.stream ? streamJob(init) : collectJob(init);
}
