import { Hono, type Context } from "hono";
import type { ChatCompletionChunk } from "../../shared/openai/chat.js";
import type { JsonSchema } from "../../shared/openai/json-schema.js";
import { MAX_MAX_TOKENS } from "../../shared/openai/request-fields.js";
import { checkJobAccess, JOB_TOKEN_HEADER } from "../auth/job-token.js";
import type { AppContext } from "../env.js";
import { ApiError, apiErrorFromJob } from "../http/api-error.js";
import { streamJob } from "../openai/job-response.js";
import { chatFormat, completionFormat, type ResponseFormat } from "../openai/response-format.js";
import type { ReadableJob } from "../region/job-reading.js";
import { shardOfJobId, shardStub, type RegionStub } from "../region/region-stub.js";
import { jobStream } from "../region-client/job-stream.js";
import { answerByteCap } from "../region/usage-bounds.js";

/**
 * Most characters of content a client can have received: an answer holds at most `max_tokens` ×
 * the longest token in UTF-8 bytes (usage-bounds.ts), and each character `after` counts (a UTF-16
 * unit, as JavaScript strings count) takes at least one of them.
 */
const MAX_AFTER = answerByteCap(MAX_MAX_TOKENS);

/**
 * Jobs outlive the request that started them: GET /v1/jobs/:id (status and text so far),
 * GET /v1/jobs/:id/stream?after=N (resume a dropped SSE stream after N characters of content),
 * DELETE /v1/jobs/:id (cancel). Each needs the job's read token (`x-tabgrid-job-token`, returned
 * only to the request that created the job) and, for a job created with a key, that key: the tab
 * that ran a job knows its id, and must not be able to read it back (edge/auth/job-token.ts).
 */
export function jobRoutes() {
  const app = new Hono<AppContext>();

  app.get("/jobs/:id", async (c) => {
    const { job } = await readable(c);
    return c.json(job.view);
  });

  app.get("/jobs/:id/stream", async (c) => {
    const afterRaw = c.req.query("after") ?? "0";
    const after = Number(afterRaw);
    if (!Number.isInteger(after) || after < 0 || after > MAX_AFTER) {
      throw new ApiError(
        400,
        "invalid_request_error",
        `after must be an integer from 0 to ${MAX_AFTER} (characters of content already received; no answer is longer).`,
        "after",
        "invalid_value",
      );
    }
    const { stub, id, job } = await readable(c);
    const owner = c.get("caller").owner;
    const mode = job.reading?.mode ?? { kind: "text" };
    // A tool-call answer is read whole at the end (response-format.ts), so its envelope is always
    // replayed from the start; `after` then counts content characters the client already has.
    const from = mode.kind === "tools" ? 0 : after;
    const sub = await stub.subscribe(id, from, owner);
    if (!sub.ok) throw apiErrorFromJob(sub.error);
    const source = jobStream(c.env, stub, { jobId: id, owner, from }, sub);
    // The answer is checked against its schema only when this stream holds it from its start.
    const schema = from === 0 && job.schemaJson ? (JSON.parse(job.schemaJson) as JsonSchema) : null;
    const format =
      job.view.kind === "chat"
        ? skipContent(
            chatFormat(id, job.view.model, mode, undefined, { schema }),
            from === after ? 0 : after,
          )
        : completionFormat(id, job.view.model);
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
    const { stub, id } = await readable(c);
    const view = await stub.cancelJob(id, "cancelled by the client", c.get("caller").owner);
    if (!view) throw notFound(id);
    return c.json(view);
  });

  return app;
}

/** The job named in the path, if this request may read it; a clear refusal otherwise. */
async function readable(c: Context<AppContext>): Promise<{
  id: string;
  stub: RegionStub;
  job: ReadableJob;
}> {
  const id = c.req.param("id") ?? "";
  // The id names the shard holding the job (region/shard-name.ts).
  const shard = shardOfJobId(id);
  if (!shard) throw notFound(id);
  const stub = shardStub(c.env, shard);
  const job = await stub.readJob(id);
  if (!job) throw notFound(id);
  const access = await checkJobAccess(
    { owner: job.owner, tokenHash: job.reading?.tokenHash ?? null },
    c.get("caller"),
    c.req.header(JOB_TOKEN_HEADER),
  );
  if (access === "missing_token") {
    throw new ApiError(
      401,
      "authentication_error",
      `Reading a job needs its token: send the ${JOB_TOKEN_HEADER} header returned with the response that created it.`,
      JOB_TOKEN_HEADER,
      "missing_job_token",
    );
  }
  if (access === "denied") {
    throw new ApiError(
      403,
      "permission_error",
      `Job '${id}' can be read only with the ${JOB_TOKEN_HEADER} returned when it was created (and with the same API key, if it was created with one).`,
      JOB_TOKEN_HEADER,
      "job_access_denied",
    );
  }
  return { id, stub, job };
}

function notFound(id: string): ApiError {
  return new ApiError(
    404,
    "not_found_error",
    `No job '${id}' (finished jobs expire after their TTL, or when their region's storage budget is reached).`,
    null,
    "job_not_found",
  );
}

/**
 * Drop the first `skip` characters of content from a chat format's closing chunks: a resumed
 * tool-envelope job is read from its start, but the client may already hold part of its content.
 */
function skipContent(format: ResponseFormat, skip: number): ResponseFormat {
  if (skip === 0) return format;
  let left = skip;
  return {
    ...format,
    closing: (finish) =>
      format.closing(finish).flatMap((raw) => {
        const chunk = raw as ChatCompletionChunk;
        const delta = chunk.choices[0]?.delta;
        if (left === 0 || typeof delta?.content !== "string") return [raw];
        const cut = Math.min(left, delta.content.length);
        left -= cut;
        const content = delta.content.slice(cut);
        return content
          ? [{ ...chunk, choices: [{ ...chunk.choices[0], delta: { ...delta, content } }] }]
          : [];
      }),
  };
}
