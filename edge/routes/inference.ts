import { Hono, type Context } from "hono";
import { ChatCompletionRequestSchema } from "../../shared/openai/chat.js";
import { CompletionRequestSchema } from "../../shared/openai/completions.js";
import { DEFAULT_RESUME_GRACE_MS } from "../../shared/openai/request-fields.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AppContext } from "../env.js";
import { apiErrorFromJob } from "../http/api-error.js";
import { parseJsonBody } from "../http/json-body.js";
import { requestLocation } from "../http/location.js";
import { log } from "../http/log.js";
import { collectJob, streamJob } from "../openai/job-response.js";
import { JobEventSource, streamIdleMs } from "../openai/job-source.js";
import { chatFormat, completionFormat, type ResponseFormat } from "../openai/response-format.js";
import { chatJob, completionJob, newJobId } from "../openai/to-job.js";
import { regionFor, regionStub, type RegionName } from "../region/region-stub.js";

interface RunOptions {
  stream: boolean;
  includeUsage: boolean;
  resumeGraceMs: number;
}

/** POST /v1/chat/completions and POST /v1/completions: run a job on a tab, answer like OpenAI. */
export function inferenceRoutes() {
  const app = new Hono<AppContext>();

  app.post("/chat/completions", async (c) => {
    const req = await parseJsonBody(c, ChatCompletionRequestSchema);
    const region = regionFor(requestLocation(c.req.raw, c.env));
    const spec = chatJob(req, newJobId(region));
    return runJob(c, region, spec, chatFormat(spec.id, spec.model), optionsOf(req));
  });

  app.post("/completions", async (c) => {
    const req = await parseJsonBody(c, CompletionRequestSchema);
    const region = regionFor(requestLocation(c.req.raw, c.env));
    const spec = completionJob(req, newJobId(region));
    return runJob(c, region, spec, completionFormat(spec.id, spec.model), optionsOf(req));
  });

  return app;
}

function optionsOf(req: {
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  tabgrid?: { resume_grace_ms?: number };
}): RunOptions {
  return {
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    resumeGraceMs: req.tabgrid?.resume_grace_ms ?? DEFAULT_RESUME_GRACE_MS,
  };
}

async function runJob(
  c: Context<AppContext>,
  region: RegionName,
  spec: JobSpec,
  format: ResponseFormat,
  opts: RunOptions,
): Promise<Response> {
  const requestId = c.get("requestId");
  const stub = regionStub(c.env, region);
  const owner = c.get("caller").owner;
  const opened = await stub.openJob(spec, { requestId, owner, detachGraceMs: opts.resumeGraceMs });
  if (!opened.ok) throw apiErrorFromJob(opened.error);
  log("info", "job started", { requestId, jobId: opened.jobId, region, node: opened.nodeId });
  const init = {
    source: new JobEventSource(
      opened,
      {
        subscribe: (after) => stub.subscribe(opened.jobId, after, owner),
        release: (readerId) => stub.release(opened.jobId, readerId),
      },
      streamIdleMs(c.env),
    ),
    format,
    includeUsage: opts.includeUsage,
    requestId,
    opening: true,
    headers: { "x-tabgrid-job-id": opened.jobId, "x-tabgrid-node": opened.nodeId },
  };
  return opts.stream ? streamJob(init) : collectJob(init);
}
