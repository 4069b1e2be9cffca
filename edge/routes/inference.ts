import { Hono, type Context } from "hono";
import { ChatCompletionRequestSchema } from "../../shared/openai/chat.js";
import { CompletionRequestSchema } from "../../shared/openai/completions.js";
import { DEFAULT_RESUME_GRACE_MS } from "../../shared/openai/request-fields.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AppContext } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { forwardToFallback } from "../fallback/upstream.js";
import { parseJsonBody } from "../http/json-body.js";
import { requestLocation, requestPlace } from "../http/location.js";
import { log } from "../http/log.js";
import { collectJob, streamJob } from "../openai/job-response.js";
import { JobEventSource, streamIdleMs } from "../openai/job-source.js";
import { chatFormat, completionFormat, type ResponseFormat } from "../openai/response-format.js";
import { chatJob, completionJob, newJobId } from "../openai/to-job.js";
import { planAnswer } from "../openai/tool-calls.js";
import type { RegionName } from "../region/region-stub.js";
import { routeJob } from "../routing/route-job.js";

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
      (r) => chatJob(req, plan, newJobId(r)),
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
      (r) => completionJob(req, newJobId(r)),
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
  specFor: (region: RegionName) => JobSpec,
  formatFor: (jobId: string, model: string) => ResponseFormat,
  promptChars: number,
  opts: RequestOptions,
): Promise<Response> {
  const requestId = c.get("requestId");
  const caller = c.get("caller");
  const loc = requestLocation(c.req.raw, c.env);
  const clientPlace = requestPlace(c.req.raw, c.env);
  const placed = (region: RegionName): JobSpec => ({
    ...specFor(region),
    ...(clientPlace ? { clientPlace } : {}),
  });
  const probe = specFor("wnam");
  const routed = await routeJob(c.env, loc, placed, {
    requestId,
    owner: caller.owner,
    detachGraceMs: opts.resumeGraceMs,
    priority: caller.tier === "key" ? 0 : 1,
    match: {
      clientLocation: loc,
      promptTokens: Math.ceil(promptChars / 4),
      maxTokens: probe.sampling.max_tokens,
      stream: opts.stream,
      ...(opts.latencyBudgetMs !== undefined ? { latencyBudgetMs: opts.latencyBudgetMs } : {}),
    },
  });
  if (routed.kind === "fallback") {
    log("info", "no tab in reach; using the fallback", { requestId, reason: routed.reason.code });
    const body = (await c.req.json()) as Record<string, unknown>;
    return forwardToFallback(c.env, kind, body, requestId, c.req.raw.signal);
  }
  const { opened, stub, region } = routed;
  log("info", "job started", { requestId, jobId: opened.jobId, region, node: opened.nodeId });
  const init = {
    source: new JobEventSource(
      opened,
      {
        subscribe: (after) => stub.subscribe(opened.jobId, after, caller.owner),
        release: (readerId) => stub.release(opened.jobId, readerId),
      },
      streamIdleMs(c.env),
    ),
    format: formatFor(opened.jobId, probe.model),
    includeUsage: opts.includeUsage,
    requestId,
    opening: true,
    headers: {
      "x-tabgrid-job-id": opened.jobId,
      "x-tabgrid-node": opened.nodeId,
      "x-tabgrid-region": region,
      "x-tabgrid-served-by": "tab",
    },
  };
  return opts.stream ? streamJob(init) : collectJob(init);
}
