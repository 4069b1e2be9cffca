import type { ChatCompletionRequest } from "../../shared/openai/chat.js";
import type { CompletionRequest } from "../../shared/openai/completions.js";
import { DEFAULT_MAX_TOKENS, normaliseStop } from "../../shared/openai/request-fields.js";
import type { JobSpec, Sampling } from "../../shared/protocol/job.js";

type Common = Pick<
  ChatCompletionRequest,
  "max_tokens" | "max_completion_tokens" | "temperature" | "top_p" | "seed" | "stop"
>;

/** `tabgrid.peer_id` in the request becomes the job's direct (WebRTC) destination. */
function directOf(req: { tabgrid?: { peer_id?: string } }): Pick<JobSpec, "direct"> {
  return req.tabgrid?.peer_id ? { direct: { peerId: req.tabgrid.peer_id } } : {};
}

function samplingOf(req: Common): Sampling {
  const sampling: Sampling = {
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? DEFAULT_MAX_TOKENS,
  };
  if (req.temperature != null) sampling.temperature = req.temperature;
  if (req.top_p != null) sampling.top_p = req.top_p;
  if (req.seed != null) sampling.seed = req.seed;
  const stop = normaliseStop(req.stop);
  if (stop) sampling.stop = stop;
  return sampling;
}

/**
 * The job a tab runs, without its id: the Region object that takes the request mints the id.
 */
export type JobInput = Omit<JobSpec, "id">;

/** An OpenAI chat request as the job a tab runs. `developer` is OpenAI's newer name for system. */
export function chatJob(req: ChatCompletionRequest): JobInput {
  return {
    model: req.model,
    input: {
      kind: "chat",
      messages: req.messages.map((m) => ({
        role: m.role === "developer" ? "system" : m.role,
        content: m.content,
      })),
    },
    sampling: samplingOf(req),
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
