import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatFinishReason,
  ChatLogprobs,
} from "../../shared/openai/chat.js";
import type { Completion } from "../../shared/openai/completions.js";
import type { FinishReason, Usage } from "../../shared/protocol/job.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";
import type { JsonSchema } from "../../shared/openai/json-schema.js";
import { checkedJson, readToolAnswer, type ToolAnswer } from "./structured-answer.js";
import type { AnswerMode } from "./tool-calls.js";

/**
 * How one job's text is shaped for the client: chat and plain completions differ only in object
 * names and where the text sits, so the streaming and collecting code is shared. `delta` and
 * `closing` return the chunks to send (maybe none: a tool-call answer is read whole at the end).
 * `closing` and `whole` may throw an ApiError when a structured answer cannot be read.
 */
export interface ResponseFormat {
  /** Chunk sent before any text (chat announces the assistant role). */
  opening(): object | null;
  delta(text: string): object[];
  /** The tab's next checked log-probability entries (JobEvent "logprobs"), in a stream. */
  logprobs(entries: TokenLogprob[]): object[];
  closing(finish: FinishReason): object[];
  /** The job's answer starts again on another tab (JobEvent "restart"): forget what was held. */
  restart(): void;
  usage(usage: Usage): object;
  whole(text: string, finish: FinishReason, usage: Usage, logprobs?: TokenLogprob[] | null): object;
}

/** The tab's entries in OpenAI's shape (`bytes`: the token's UTF-8 bytes); null when none. */
export function chatLogprobs(entries: TokenLogprob[] | null | undefined): ChatLogprobs | null {
  if (!entries) return null;
  const encoder = new TextEncoder();
  const bytes = (token: string) => [...encoder.encode(token)];
  return {
    content: entries.map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: bytes(e.token),
      top_logprobs: e.top.map((t) => ({
        token: t.token,
        logprob: t.logprob,
        bytes: bytes(t.token),
      })),
    })),
    refusal: null,
  };
}

/** OpenAI has no "abort" finish reason; a job stopped by the coordinator ended as "stop". */
function openAIFinish(finish: FinishReason): "stop" | "length" {
  return finish === "length" ? "length" : "stop";
}

/**
 * A cut-off envelope (finish "length") cannot be read: its raw text is returned as content with
 * finish_reason "length", as OpenAI returns truncated output.
 */
function toolAnswerOf(
  text: string,
  finish: FinishReason,
  jobId: string,
  contentIsJson: boolean,
  schema: JsonSchema | null,
): ToolAnswer | null {
  return finish === "length" ? null : readToolAnswer(text, jobId, contentIsJson, schema);
}

/**
 * Which choice a job answers: `n` > 1 runs one job per choice, and every choice of a response
 * shares the id made from the first choice's job id (`responseJobId`).
 */
export interface ChoiceOf {
  index: number;
  responseJobId: string;
}

/**
 * `logprobs`: the request asked for them. A stream then gives each chunk the entries of its own
 * tokens, as OpenAI does: a piece of text is held until the tab's entries for it arrive (the tab
 * sends them right after the piece) and goes out with them; text still held when the job ends
 * (a tab that sends its entries late, or text another tab wrote before a failover) goes out
 * without. Collected answers take the finishing tab's entries from the `done` event instead.
 *
 * `schema`: the job's constraint, which a JSON answer or tool envelope is checked against before
 * the client gets it (structured-answer.ts). A tool envelope is held until it is whole, so nothing
 * of a wrong one is sent. A streamed `response_format` answer goes out as it is written, so it is
 * checked when it ends: a wrong one ends with an error event instead of its `finish_reason`. Null
 * for a resumed JSON stream that does not hold the answer from its start (it is not checked).
 */
export function chatFormat(
  jobId: string,
  model: string,
  mode: AnswerMode = { kind: "text" },
  choice: ChoiceOf = { index: 0, responseJobId: jobId },
  options: { logprobs?: boolean; schema?: JsonSchema | null } = {},
): ResponseFormat {
  const schema = options.schema ?? null;
  const { index } = choice;
  const id = `chatcmpl-${choice.responseJobId}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (
    delta: ChatCompletionChunk["choices"][number]["delta"],
    finish: ChatFinishReason | null,
    logprobs: ChatLogprobs | null = null,
  ): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index, delta, finish_reason: finish, logprobs }],
  });
  /** The answer so far: a tool envelope (held until whole) or a JSON answer (checked at the end). */
  let envelope = "";
  /** Text waiting for its tokens' logprobs (only when they were asked for). */
  let held = "";
  return {
    opening: () => chunk({ role: "assistant", content: "" }, null),
    delta: (text) => {
      if (mode.kind !== "text") envelope += text;
      if (mode.kind === "tools") return [];
      if (!options.logprobs) return [chunk({ content: text }, null)];
      held += text;
      return [];
    },
    logprobs: (entries) => {
      // Tools and logprobs are not combined (400), and a resumed stream does not ask for them.
      if (mode.kind === "tools" || !options.logprobs) return [];
      const content = held;
      held = "";
      return [chunk({ content }, null, chatLogprobs(entries))];
    },
    restart: () => {
      envelope = "";
      held = "";
    },
    closing: (finish) => {
      if (mode.kind !== "tools") {
        if (mode.kind === "json" && schema && finish === "stop")
          checkedJson(envelope, schema, jobId);
        const rest = held ? [chunk({ content: held }, null)] : [];
        held = "";
        return [...rest, chunk({}, openAIFinish(finish))];
      }
      const answer = toolAnswerOf(envelope, finish, jobId, mode.contentIsJson, schema);
      if (!answer) return [chunk({ content: envelope }, null), chunk({}, "length")];
      if (answer.kind === "content")
        return [chunk({ content: answer.content }, null), chunk({}, openAIFinish(finish))];
      // As OpenAI streams them: per call, a first delta with id, type and name, then arguments.
      const out = answer.calls.flatMap((c, call) => [
        chunk(
          {
            tool_calls: [
              {
                index: call,
                id: c.id,
                type: "function",
                function: { name: c.function.name, arguments: "" },
              },
            ],
          },
          null,
        ),
        chunk(
          { tool_calls: [{ index: call, function: { arguments: c.function.arguments } }] },
          null,
        ),
      ]);
      return [...out, chunk({}, "tool_calls")];
    },
    usage: (usage): ChatCompletionChunk => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [],
      usage,
    }),
    whole: (text, finish, usage, logprobs): ChatCompletion => {
      if (mode.kind === "json" && finish === "stop") checkedJson(text, schema, jobId);
      const answer =
        mode.kind === "tools"
          ? toolAnswerOf(text, finish, jobId, mode.contentIsJson, schema)
          : null;
      const message: ChatCompletion["choices"][number]["message"] =
        answer?.kind === "tool_calls"
          ? { role: "assistant", content: null, refusal: null, tool_calls: answer.calls }
          : {
              role: "assistant",
              content: answer?.kind === "content" ? answer.content : text,
              refusal: null,
            };
      return {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          {
            index,
            message,
            finish_reason: answer?.kind === "tool_calls" ? "tool_calls" : openAIFinish(finish),
            logprobs: chatLogprobs(logprobs),
          },
        ],
        usage,
      };
    },
  };
}

export function completionFormat(
  jobId: string,
  model: string,
  choice: ChoiceOf = { index: 0, responseJobId: jobId },
): ResponseFormat {
  const { index } = choice;
  const id = `cmpl-${choice.responseJobId}`;
  const created = Math.floor(Date.now() / 1000);
  const body = (text: string, finish: "stop" | "length" | null): Completion => ({
    id,
    object: "text_completion",
    created,
    model,
    choices: [{ index, text, finish_reason: finish, logprobs: null }],
  });
  return {
    opening: () => null,
    delta: (text) => [body(text, null)],
    logprobs: () => [],
    restart: () => {},
    closing: (finish) => [body("", openAIFinish(finish))],
    usage: (usage): Completion => ({ ...body("", null), choices: [], usage }),
    whole: (text, finish, usage): Completion => ({ ...body(text, openAIFinish(finish)), usage }),
  };
}
