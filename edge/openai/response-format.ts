import type { ChatCompletion, ChatCompletionChunk } from "../../shared/openai/chat.js";
import type { Completion } from "../../shared/openai/completions.js";
import type { FinishReason, Usage } from "../../shared/protocol/job.js";

/**
 * How one job's text is shaped for the client: chat and plain completions differ only in object
 * names and where the text sits, so the streaming and collecting code is shared.
 */
export interface ResponseFormat {
  /** Chunk sent before any text (chat announces the assistant role). */
  opening(): object | null;
  delta(text: string): object;
  closing(finish: FinishReason): object;
  usage(usage: Usage): object;
  whole(text: string, finish: FinishReason, usage: Usage): object;
}

/** OpenAI has no "abort" finish reason; a job stopped by the coordinator ended as "stop". */
function openAIFinish(finish: FinishReason): "stop" | "length" {
  return finish === "length" ? "length" : "stop";
}

export function chatFormat(jobId: string, model: string): ResponseFormat {
  const id = `chatcmpl-${jobId}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (
    delta: ChatCompletionChunk["choices"][number]["delta"],
    finish: "stop" | "length" | null,
  ): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  });
  return {
    opening: () => chunk({ role: "assistant", content: "" }, null),
    delta: (text) => chunk({ content: text }, null),
    closing: (finish) => chunk({}, openAIFinish(finish)),
    usage: (usage): ChatCompletionChunk => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [],
      usage,
    }),
    whole: (text, finish, usage): ChatCompletion => ({
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: text },
          finish_reason: openAIFinish(finish),
          logprobs: null,
        },
      ],
      usage,
    }),
  };
}

export function completionFormat(jobId: string, model: string): ResponseFormat {
  const id = `cmpl-${jobId}`;
  const created = Math.floor(Date.now() / 1000);
  const body = (text: string, finish: "stop" | "length" | null): Completion => ({
    id,
    object: "text_completion",
    created,
    model,
    choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
  });
  return {
    opening: () => null,
    delta: (text) => body(text, null),
    closing: (finish) => body("", openAIFinish(finish)),
    usage: (usage): Completion => ({ ...body("", null), choices: [], usage }),
    whole: (text, finish, usage): Completion => ({ ...body(text, openAIFinish(finish)), usage }),
  };
}
