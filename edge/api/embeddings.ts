import { Hono } from "hono";
import { embeddingDimensions, isEmbeddingModel } from "../../shared/models/embedding-models.js";
import {
  EmbeddingRequestSchema,
  type EmbeddingRequest,
  type EmbeddingResponse,
} from "../../shared/openai/embeddings.js";
import { DEFAULT_RESUME_GRACE_MS } from "../../shared/openai/request-fields.js";
import { decodeVector } from "../../shared/protocol/embedding-vectors.js";
import { baseQueueClass } from "../credits/tiers.js";
import type { AppContext, AppEnv } from "../env.js";
import { ApiError, apiErrorFromJob } from "../http/api-error.js";
import { parseJsonBody } from "../http/json-body.js";
import { requestLocation, requestPlace } from "../http/location.js";
import { log } from "../http/log.js";
import type { JobRequest } from "../region/job-request.js";
import { catalogRecord } from "../model-catalog.js";
import { jobStream } from "../region-client/job-stream.js";
import { openJob } from "../region-client/open-job.js";

/**
 * POST /v1/embeddings: one job on a tab that serves the embedding model, placed and failed over
 * like a chat job (region-client/open-job.ts, the Region's placement). The tab answers with
 * vectors, which the Region checks on arrival (edge/region/embedding-answers.ts) and keeps; once
 * the job is done the Worker reads them and answers in OpenAI's shape, as floats or base64.
 */
export function embeddingRoutes() {
  const app = new Hono<AppContext>();

  app.post("/embeddings", async (c) => {
    const req = await parseJsonBody(c, EmbeddingRequestSchema);
    const dimensions = modelDimensions(c.env, req);
    const requestId = c.get("requestId");
    const caller = c.get("caller");
    const slot = c.get("slot");
    if (req.user) log("info", "end user", { requestId, user: req.user });
    const loc = requestLocation(c.req.raw, c.env);
    const clientPlace = requestPlace(c.req.raw, c.env);
    const chars = req.inputs.reduce((n, s) => n + s.length, 0);
    const request: JobRequest = {
      job: {
        model: req.model,
        input: { kind: "embedding", inputs: req.inputs, dimensions },
        // Nothing is decoded (see EmbeddingInputSchema); every job has sampling fields.
        sampling: { max_tokens: 1 },
        ...(clientPlace ? { clientPlace } : {}),
      },
      requestId,
      owner: caller.owner,
      ...(slot.ref ? { slot: slot.ref } : {}),
      detachGraceMs: DEFAULT_RESUME_GRACE_MS,
      priority: baseQueueClass(caller),
      match: {
        clientLocation: loc,
        promptTokens: Math.ceil(chars / 4),
        maxTokens: 1,
        stream: false,
      },
    };
    const routed = await openJob(c.env, loc, request);
    // The cloud fallback is for chat: an upstream serving this embedding model is not assumed.
    if (routed.kind === "fallback") throw apiErrorFromJob(routed.reason);
    const { opened, stub, region } = routed;
    // The job keeps the caller's concurrency slot until it ends (its Region lets go), also when
    // the client hangs up and the runtime cancels this handler (auth/client-slots.ts).
    slot.handOver([opened.jobId], { keepRequest: false });
    log("info", "embedding job started", { requestId, jobId: opened.jobId, region });
    const source = jobStream(
      c.env,
      stub,
      { jobId: opened.jobId, owner: caller.owner, from: 0 },
      opened,
    );
    for (;;) {
      const event = await source.next();
      if (!event) throw new ApiError(502, "server_error", "The job ended without a result.");
      if (event.type === "error") throw apiErrorFromJob(event.error);
      if (event.type !== "done") continue;
      const vectors = await stub.jobVectors(opened.jobId, caller.owner);
      if (!vectors || vectors.length !== req.inputs.length) {
        throw new ApiError(502, "server_error", "The job's vectors could not be read.");
      }
      const body: EmbeddingResponse = {
        object: "list",
        data: vectors.map((vector, index) => ({
          object: "embedding",
          index,
          embedding: req.encoding_format === "base64" ? vector : floats(vector, dimensions),
        })),
        model: req.model,
        usage: {
          prompt_tokens: event.usage.prompt_tokens,
          total_tokens: event.usage.prompt_tokens,
        },
      };
      return c.json(body, 200, {
        "x-tabgrid-job-id": opened.jobId,
        "x-tabgrid-node": opened.tab,
        "x-tabgrid-region": region,
        "x-tabgrid-served-by": "tab",
      });
    }
  });

  return app;
}

/**
 * For the chat and completions routes: an embedding model writes no text, so a request for one is
 * a 400 naming `model` rather than a job every tab serving it would fail.
 */
export function refuseEmbeddingModel(env: AppEnv, model: string): void {
  const record = catalogRecord(env, model);
  if (record && isEmbeddingModel(record)) {
    throw new ApiError(
      400,
      "invalid_request_error",
      `'${model}' is an embedding model: use POST /v1/embeddings.`,
      "model",
      "model_not_chat",
    );
  }
}

/** The model's vector length, after checking the model embeds and `dimensions` fits it. */
function modelDimensions(env: AppEnv, req: EmbeddingRequest): number {
  const record = catalogRecord(env, req.model);
  if (!record) {
    throw new ApiError(
      404,
      "not_found_error",
      `The model '${req.model}' is not in the catalog (GET /v1/catalog).`,
      "model",
      "model_not_found",
    );
  }
  if (!isEmbeddingModel(record)) {
    throw new ApiError(
      400,
      "invalid_request_error",
      `'${req.model}' is not an embedding model; GET /v1/models says which are (capabilities.embeddings).`,
      "model",
      "model_not_embedding",
    );
  }
  const dimensions = embeddingDimensions(record);
  if (dimensions === null) {
    throw new ApiError(
      500,
      "server_error",
      `The catalog does not say how long '${req.model}' vectors are (embedding_dimensions).`,
      "model",
      "catalog_config",
    );
  }
  if (req.dimensions != null && req.dimensions !== dimensions) {
    throw new ApiError(
      400,
      "invalid_request_error",
      `'${req.model}' gives ${dimensions}-dimensional vectors and cannot shorten them; omit dimensions or send ${dimensions}.`,
      "dimensions",
      "unsupported_value",
    );
  }
  return dimensions;
}

/** A stored vector (checked when the tab sent it) as OpenAI's float list. */
function floats(vector: string, dimensions: number): number[] {
  const v = decodeVector(vector, dimensions);
  if (!v.ok) throw new ApiError(502, "server_error", `A stored vector is unreadable: ${v.why}.`);
  return Array.from(v.values);
}
