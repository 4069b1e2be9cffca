import { Hono, type Context } from "hono";
import type { AppContext } from "../env.js";
import { ApiError, apiErrorFromJob } from "../http/api-error.js";
import { streamJob } from "../openai/job-response.js";
import { chatFormat, completionFormat } from "../openai/response-format.js";
import { regionOfJobId } from "../region/job-request.js";
import { isRegion, regionStub } from "../region/region-stub.js";
import { jobStream } from "../region-client/job-stream.js";

/**
 * Jobs outlive the request that started them: GET /v1/jobs/:id (status and text so far),
 * GET /v1/jobs/:id/stream?after=N (resume a dropped SSE stream after N characters of content),
 * DELETE /v1/jobs/:id (cancel).
 */
export function jobRoutes() {
  const app = new Hono<AppContext>();

  app.get("/jobs/:id", async (c) => {
    const { stub, id } = jobStub(c);
    const view = await stub.getJob(id, c.get("caller").owner);
    if (!view) throw notFound(id);
    return c.json(view);
  });

  app.get("/jobs/:id/stream", async (c) => {
    const { stub, id } = jobStub(c);
    const afterRaw = c.req.query("after") ?? "0";
    const after = Number(afterRaw);
    if (!Number.isInteger(after) || after < 0) {
      throw new ApiError(
        400,
        "invalid_request_error",
        "after must be a non-negative integer (characters already received).",
        "after",
        "invalid_value",
      );
    }
    const owner = c.get("caller").owner;
    const view = await stub.getJob(id, owner);
    if (!view) throw notFound(id);
    const sub = await stub.subscribe(id, after, owner);
    if (!sub.ok) throw apiErrorFromJob(sub.error);
    const source = jobStream(c.env, stub, { jobId: id, owner, from: after }, sub);
    const format =
      view.kind === "chat" ? chatFormat(id, view.model) : completionFormat(id, view.model);
    return streamJob({
      source,
      format,
      includeUsage: c.req.query("include_usage") === "true",
      requestId: c.get("requestId"),
      opening: after === 0,
      headers: { "x-tabgrid-job-id": id },
    });
  });

  app.delete("/jobs/:id", async (c) => {
    const { stub, id } = jobStub(c);
    const view = await stub.cancelJob(id, "cancelled by the client", c.get("caller").owner);
    if (!view) throw notFound(id);
    return c.json(view);
  });

  return app;
}

function notFound(id: string): ApiError {
  return new ApiError(
    404,
    "not_found_error",
    `No job '${id}' (finished jobs expire after their TTL).`,
    null,
    "job_not_found",
  );
}

function jobStub(c: Context<AppContext>) {
  const id = c.req.param("id") ?? "";
  const region = regionOfJobId(id);
  if (!isRegion(region)) throw notFound(id);
  return { id, stub: regionStub(c.env, region) };
}
