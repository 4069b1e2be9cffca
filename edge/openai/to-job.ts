import type { ChatCompletionRequest } from "../../shared/openai/chat.js";
import type { CompletionRequest } from "../../shared/openai/completions.js";
import { DEFAULT_MAX_TOKENS, normaliseStop } from "../../shared/openai/request-fields.js";
import type { JobSpec, Sampling } from "../../shared/protocol/job.js";
import { jobMessages, type AnswerPlan } from "./tool-calls.js";

type Common = Pick<
  ChatCompletionRequest,
  | "max_tokens"
  | "max_completion_tokens"
  | "temperature"
  | "top_p"
  | "seed"
  | "stop"
  | "presence_penalty"
  | "frequency_penalty"
  | "logit_bias"
>;

/** `tabgrid.peer_id` in the request becomes the job's direct (WebRTC) destination. */
function directOf(req: { tabgrid?: { peer_id?: string } }): Pick<JobSpec, "direct"> {
  return req.tabgrid?.peer_id ? { direct: { peerId: req.tabgrid.peer_id } } : {};
}

/** 2^53: seeds a tab takes are 0..2^53 − 1 (shared/protocol/job.ts `SamplingSchema`). */
const SEED_SPAN = Number.MAX_SAFE_INTEGER + 1;

/**
 * The seed a tab's engine gets for the client's `seed` moved by `offset` (choice `i` of `n` gets
 * `seed + i`), taken modulo 2^53 into what the tab protocol carries and WebLLM takes: a negative
 * seed is moved up by 2^53 (-1 → 2^53 − 1), and a sum past 2^53 − 1 wraps to 0. OpenAI's `seed` is
 * any integer (the API takes any safe integer), so without this the largest seeds with `n` > 1 and
 * every negative seed gave jobs no tab could run. Each step is exact in doubles: `offset` is small.
 */
export function tabSeed(seed: number, offset = 0): number {
  const base = seed < 0 ? seed + SEED_SPAN : seed;
  return base > Number.MAX_SAFE_INTEGER - offset ? base - SEED_SPAN + offset : base + offset;
}

function samplingOf(req: Common): Sampling {
  const sampling: Sampling = {
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? DEFAULT_MAX_TOKENS,
  };
  if (req.temperature != null) sampling.temperature = req.temperature;
  if (req.top_p != null) sampling.top_p = req.top_p;
  if (req.seed != null) sampling.seed = tabSeed(req.seed);
  const stop = normaliseStop(req.stop);
  if (stop) sampling.stop = stop;
  if (req.presence_penalty != null) sampling.presence_penalty = req.presence_penalty;
  if (req.frequency_penalty != null) sampling.frequency_penalty = req.frequency_penalty;
  if (req.logit_bias != null && Object.keys(req.logit_bias).length)
    sampling.logit_bias = req.logit_bias;
  return sampling;
}

/**
 * The job a tab runs, without its id: the Region object that takes the request mints the id.
 */
export type JobInput = Omit<JobSpec, "id">;

/**
 * An OpenAI chat request as the job a tab runs, under the answer plan (text, JSON, or the tool
 * envelope of tool-calls.ts). `developer` is OpenAI's newer name for system.
 */
export function chatJob(req: ChatCompletionRequest, plan: AnswerPlan): JobInput {
  const sampling = samplingOf(req);
  if (plan.schema) sampling.constraint = { kind: "json", schema: plan.schema };
  if (req.logprobs) sampling.logprobs = { top: req.top_logprobs ?? 0 };
  return {
    model: req.model,
    input: { kind: "chat", messages: jobMessages(req.messages, plan) },
    sampling,
    ...directOf(req),
  };
}

export function completionJob(req: CompletionRequest): JobInput {
  return {
    model: req.model,
    input: { kind: "completion", prompt: req.prompt },
    sampling: samplingOf(req),
    ...directOf(req),
  };
}
