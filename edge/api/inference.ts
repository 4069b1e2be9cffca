import { Hono, type Context } from "hono";
import { ChatCompletionRequestSchema } from "../../shared/openai/chat.js";
import { CompletionRequestSchema } from "../../shared/openai/completions.js";
import {
  DEFAULT_RESUME_GRACE_MS,
  LatencyBudgetMsSchema,
  MAX_LATENCY_BUDGET_MS,
} from "../../shared/openai/request-fields.js";
import type { AppContext } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { refuseEmbeddingModel } from "./embeddings.js";
import { forwardToFallback } from "../fallback/upstream.js";
import { parseJsonBody } from "../http/json-body.js";
import { requestLocation, requestPlace } from "../http/location.js";
import { log } from "../http/log.js";
import { collectChoices, streamChoices, type ChoiceJob } from "../openai/job-response.js";
import {
  chatFormat,
  completionFormat,
  type ChoiceOf,
  type ResponseFormat,
} from "../openai/response-format.js";
import { chatJob, completionJob, tabSeed, type JobInput } from "../openai/to-job.js";
import { planAnswer, type AnswerMode } from "../openai/tool-calls.js";
import { JOB_TOKEN_HEADER, newJobToken } from "../auth/job-token.js";
import type { JobRequest } from "../region/job-request.js";
import { jobStream } from "../region-client/job-stream.js";
import { openJob, type Opened } from "../region-client/open-job.js";
import { readConfig } from "../config.js";
import { baseQueueClass, requestedTier, TIER_HEADER, type Tier } from "../credits/tiers.js";

interface RequestOptions {
  /** Answers asked for (`n`): one job each. */
  choices: number;
  stream: boolean;
  includeUsage: boolean;
  resumeGraceMs: number;
  latencyBudgetMs: number | undefined;
  tier: Tier | null;
}

type Kind = "chat/completions" | "completions";

const LATENCY_BUDGET_HEADER = "x-tabgrid-latency-budget-ms";

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
      (jobId, model, choice) =>
        chatFormat(jobId, model, plan.mode, choice, {
          logprobs: req.logprobs === true,
          schema: plan.schema,
        }),
      chars,
      optionsOf(c, req),
      plan.mode,
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
    n?: number | null;
    stream?: boolean | null;
    stream_options?: { include_usage?: boolean } | null;
    tabgrid?: { resume_grace_ms?: number; latency_budget_ms?: number };
  },
): RequestOptions {
  // Clients that cannot add body fields may send the budget as a header, bounded as the field is.
  const raw = c.req.header(LATENCY_BUDGET_HEADER);
  const header = raw === undefined ? undefined : LatencyBudgetMsSchema.safeParse(Number(raw));
  if (header?.success === false) {
    throw new ApiError(
      400,
      "invalid_request_error",
      `${LATENCY_BUDGET_HEADER} must be an integer from 1 to ${MAX_LATENCY_BUDGET_MS} (milliseconds).`,
      LATENCY_BUDGET_HEADER,
      "invalid_value",
    );
  }
  const tier = requestedTier(c.req.header(TIER_HEADER), c.get("caller").tier === "key");
  const budget = req.tabgrid?.latency_budget_ms ?? header?.data;
  return {
    choices: req.n ?? 1,
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    resumeGraceMs: req.tabgrid?.resume_grace_ms ?? DEFAULT_RESUME_GRACE_MS,
    // The interactive tier's budget unless the request names its own.
    latencyBudgetMs:
      budget ??
      (tier === "interactive" ? readConfig(c.env).credits.interactiveBudgetMs : undefined),
    tier,
  };
}

/**
 * Choice `i` of `n`: the same job, with the seed moved by `i` when the client gave one, so the
 * answers differ as OpenAI's do (a seeded engine would otherwise repeat the first answer); wrapped
 * within the seeds a tab takes (`tabSeed`), so the largest seed's second choice is 0.
 */
function choiceJob(job: JobInput, i: number): JobInput {
  if (i === 0 || job.sampling.seed === undefined) return job;
  return { ...job, sampling: { ...job.sampling, seed: tabSeed(job.sampling.seed, i) } };
}

async function runJob(
  c: Context<AppContext>,
  kind: Kind,
  job: JobInput,
  formatFor: (jobId: string, model: string, choice: ChoiceOf) => ResponseFormat,
  promptChars: number,
  opts: RequestOptions,
  mode: AnswerMode = { kind: "text" },
): Promise<Response> {
  refuseEmbeddingModel(c.env, job.model);
  const requestId = c.get("requestId");
  const caller = c.get("caller");
  const slot = c.get("slot");
  const loc = requestLocation(c.req.raw, c.env);
  const clientPlace = requestPlace(c.req.raw, c.env);
  // Only this response carries the read token (one for all of its choices); each Region object
  // keeps its hash.
  const readToken = await newJobToken();
  // Built once per choice, without a region: whichever Region object takes it mints the job id.
  const requestFor = (input: JobInput): JobRequest => ({
    job: { ...input, ...(clientPlace ? { clientPlace } : {}) },
    requestId,
    owner: caller.owner,
    ...(slot.ref ? { slot: slot.ref } : {}),
    reading: { tokenHash: readToken.hash, mode, streamed: opts.stream },
    detachGraceMs: opts.resumeGraceMs,
    priority: baseQueueClass(caller),
    ...(opts.tier ? { tier: opts.tier } : {}),
    match: {
      clientLocation: loc,
      promptTokens: Math.ceil(promptChars / 4),
      maxTokens: input.sampling.max_tokens,
      stream: opts.stream,
      ...(opts.latencyBudgetMs !== undefined ? { latencyBudgetMs: opts.latencyBudgetMs } : {}),
    },
  });
  // n > 1: one job per choice, opened one after another, so each takes the best idle tab left
  // (several tabs answer in parallel; with fewer tabs the rest wait in the queue).
  type OnTab = Extract<Opened, { kind: "tab" }>;
  const opened: OnTab[] = [];
  const choices: ChoiceJob[] = [];
  const source = (o: OnTab) =>
    jobStream(c.env, o.stub, { jobId: o.opened.jobId, owner: caller.owner, from: 0 }, o.opened);
  let fallback: string | null = null;
  try {
    for (let i = 0; i < opts.choices; i++) {
      const routed = await openJob(c.env, loc, requestFor(choiceJob(job, i)));
      if (routed.kind === "fallback") {
        fallback = routed.reason.code;
        break;
      }
      opened.push(routed);
      choices.push({
        source: source(routed),
        format: formatFor(routed.opened.jobId, job.model, {
          index: i,
          responseJobId: opened[0]!.opened.jobId,
        }),
      });
    }
  } catch (err) {
    await Promise.all(choices.map((ch) => ch.source.cancel()));
    throw err;
  } finally {
    // Each job opened keeps the caller's concurrency slot until it ends (its Region lets go); the
    // request keeps it too only while its answer still comes from elsewhere (auth/client-slots.ts).
    const jobIds = opened.map((o) => o.opened.jobId);
    slot.handOver(jobIds, { keepRequest: jobIds.length < opts.choices });
  }
  if (fallback !== null) {
    // The upstream answers the whole request (all n choices); jobs already opened are let go.
    await Promise.all(choices.map((ch) => ch.source.cancel()));
    log("info", "no tab in reach; using the fallback", { requestId, reason: fallback });
    const body = (await c.req.json()) as Record<string, unknown>;
    return forwardToFallback(c.env, kind, body, requestId, c.req.raw.signal);
  }
  for (const o of opened)
    log("info", "job started", {
      requestId,
      jobId: o.opened.jobId,
      region: o.region,
      tab: o.opened.tab,
    });
  const list = (f: (o: OnTab) => string) => opened.map(f).join(",");
  const init = {
    choices,
    includeUsage: opts.includeUsage,
    requestId,
    opening: true,
    // With n > 1, one comma-separated entry per choice, in index order.
    headers: {
      "x-tabgrid-job-id": list((o) => o.opened.jobId),
      [JOB_TOKEN_HEADER]: readToken.token,
      "x-tabgrid-node": list((o) => o.opened.tab),
      "x-tabgrid-region": list((o) => o.region),
      "x-tabgrid-served-by": "tab",
    },
  };
  if (opts.stream) return streamChoices(init);
  // A client waiting for a whole answer that hangs up lets go of its jobs at once, as a streamed
  // one does at its next write: each runs on for its resume grace, then is cancelled.
  // A client that left while its jobs were opening is let go of now (its abort already fired).
  const letGo = () =>
    c.executionCtx.waitUntil(Promise.all(choices.map((ch) => ch.source.cancel())));
  if (c.req.raw.signal.aborted) letGo();
  else c.req.raw.signal.addEventListener("abort", letGo, { once: true });
  return collectChoices(init);
}
