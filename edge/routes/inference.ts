import { Hono } from "hono";
import { ChatCompletionRequestSchema } from "../../shared/openai/chat.js";
import { CompletionRequestSchema } from "../../shared/openai/completions.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AppContext } from "../env.js";
import { apiErrorFromJob } from "../http/api-error.js";
import { parseJsonBody } from "../http/json-body.js";
import { requestLocation } from "../http/location.js";
import { log } from "../http/log.js";
import { collectJob, streamJob } from "../openai/job-response.js";
import { chatFormat, completionFormat, type ResponseFormat } from "../openai/response-format.js";
import { chatJob, completionJob } from "../openai/to-job.js";
import { regionFor, regionStub } from "../region/region-stub.js";
import type { Context } from "hono";

/** POST /v1/chat/completions and POST /v1/completions: run a job on a tab, answer like OpenAI. */
export function inferenceRoutes() {
  const app = new Hono<AppContext>();

  app.post("/chat/completions", async (c) => {
    const req = await parseJsonBody(c, ChatCompletionRequestSchema);
    const spec = chatJob(req);
    return runJob(
      c,
      spec,
      chatFormat(spec.id, spec.model),
      req.stream ?? false,
      req.stream_options?.include_usage ?? false,
    );
  });

  app.post("/completions", async (c) => {
    const req = await parseJsonBody(c, CompletionRequestSchema);
    const spec = completionJob(req);
    return runJob(
      c,
      spec,
      completionFormat(spec.id, spec.model),
      req.stream ?? false,
      req.stream_options?.include_usage ?? false,
    );
  });

  return app;
}

async function runJob(
  c: Context<AppContext>,
  spec: JobSpec,
  format: ResponseFormat,
  stream: boolean,
  includeUsage: boolean,
): Promise<Response> {
  const requestId = c.get("requestId");
  const region = regionFor(requestLocation(c.req.raw, c.env));
  const stub = regionStub(c.env, region);
  const opened = await stub.openJob(spec, requestId);
  if (!opened.ok) throw apiErrorFromJob(opened.error);
  log("info", "job started", { requestId, jobId: opened.jobId, region, node: opened.nodeId });
  const init = {
    events: opened.events,
    format,
    includeUsage,
    requestId,
    headers: { "x-tabgrid-job-id": opened.jobId, "x-tabgrid-node": opened.nodeId },
    onClientGone: () => {
      log("info", "client went away", { requestId, jobId: opened.jobId });
      c.executionCtx.waitUntil(stub.cancelJob(opened.jobId, "client went away"));
    },
  };
  return stream ? streamJob(init) : collectJob(init);
}
