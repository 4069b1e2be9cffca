import { z } from "zod";
import {
  CommonRequestFields,
  checkStreamOptions,
  closedObject,
  noUnknownFields,
  refused,
} from "./request-fields.js";
import { unenforceable } from "./json-schema.js";
import {
  MAX_DESCRIPTION_BYTES,
  MAX_NAME_BYTES,
  MAX_TOOL_CALL_ID_BYTES,
  boundedString,
  schemaSizeProblem,
} from "./string-limits.js";
import { UsageSchema } from "../protocol/job.js";
import { MAX_TOP_LOGPROBS, SERVED_TOP_LOGPROBS } from "../protocol/logprobs.js";

/** OpenAI content may be a string or an array of parts; Tabgrid's text models accept text parts. */
const ContentSchema = z.union([
  z.string(),
  z
    .array(
      closedObject({
        type: z.literal("text", { error: "only text content parts are supported" }),
        text: z.string(),
        prompt_cache_breakpoint: refused(
          "prompt cache breakpoints are not used: tabs reuse the KV cache of the conversation they served last",
        ),
      }),
    )
    .transform((parts) => parts.map((p) => p.text).join("")),
]);

/**
 * A JSON schema Tabgrid can enforce; otherwise 400 naming the keyword's place inside it. Its size
 * (bytes as JSON, nesting depth) is checked first, so only a small schema is ever walked.
 */
const EnforceableSchema = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  const tooBig = schemaSizeProblem(schema);
  if (tooBig) {
    ctx.addIssue({ code: "custom", message: tooBig });
    return;
  }
  const problem = unenforceable(schema);
  if (problem) {
    ctx.addIssue({
      code: "custom",
      path: problem.path ? problem.path.split(".") : [],
      message: problem.message,
    });
  }
});

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export const ToolCallSchema = closedObject({
  id: boundedString(MAX_TOOL_CALL_ID_BYTES, 1),
  type: z.literal("function"),
  function: closedObject({ name: z.string().regex(FUNCTION_NAME), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

const nameField = boundedString(MAX_NAME_BYTES).nullish();

const SystemMessage = z
  .object({
    role: z.enum(["system", "developer"]),
    content: ContentSchema,
    name: refused("names on system messages are not passed to the model"),
  })
  .catchall(noUnknownFields);

const UserMessage = z
  .object({ role: z.literal("user"), content: ContentSchema, name: nameField })
  .catchall(noUnknownFields);

const AssistantMessage = z
  .object({
    role: z.literal("assistant"),
    content: ContentSchema.nullish(),
    name: nameField,
    tool_calls: z.array(ToolCallSchema).nullish(),
    refusal: refused("refusal is not replayed to the model"),
    audio: refused("audio is not supported"),
    function_call: refused("function_call is deprecated by OpenAI; use tool_calls"),
  })
  .catchall(noUnknownFields);

const ToolMessage = z
  .object({
    role: z.literal("tool"),
    content: ContentSchema,
    tool_call_id: boundedString(MAX_TOOL_CALL_ID_BYTES, 1),
  })
  .catchall(noUnknownFields);

export const ChatRequestMessageSchema = z.discriminatedUnion("role", [
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
]);
export type ChatRequestMessage = z.infer<typeof ChatRequestMessageSchema>;

export const ToolSchema = z
  .object({
    type: z.literal("function", { error: "only function tools are supported" }),
    function: z
      .object({
        name: z.string().regex(FUNCTION_NAME, "1-64 letters, digits, _ or -"),
        description: boundedString(MAX_DESCRIPTION_BYTES).nullish(),
        parameters: EnforceableSchema.nullish(),
        strict: z.boolean().nullish(),
      })
      .catchall(noUnknownFields),
  })
  .catchall(noUnknownFields);
export type Tool = z.infer<typeof ToolSchema>;

export const ToolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z
    .object({
      type: z.literal("function"),
      function: closedObject({
        name: z.string().regex(FUNCTION_NAME, "1-64 letters, digits, _ or -"),
      }),
    })
    .catchall(noUnknownFields),
]);
export type ToolChoice = z.infer<typeof ToolChoiceSchema>;

export const ResponseFormatSchema = z.discriminatedUnion("type", [
  closedObject({ type: z.literal("text") }),
  closedObject({ type: z.literal("json_object") }),
  z
    .object({
      type: z.literal("json_schema"),
      json_schema: closedObject({
        name: z.string().regex(FUNCTION_NAME),
        description: boundedString(MAX_DESCRIPTION_BYTES).nullish(),
        schema: EnforceableSchema.nullish(),
        strict: z.boolean().nullish(),
      }),
    })
    .catchall(noUnknownFields),
]);
export type ResponseFormat = z.infer<typeof ResponseFormatSchema>;

export const MAX_MESSAGES = 256;
export const MAX_TOOLS = 128;

export const ChatCompletionRequestSchema = z
  .object({
    ...CommonRequestFields,
    messages: z.array(ChatRequestMessageSchema).min(1).max(MAX_MESSAGES),
    response_format: ResponseFormatSchema.nullish(),
    tools: z.array(ToolSchema).max(MAX_TOOLS).nullish(),
    tool_choice: ToolChoiceSchema.nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    /** Each answer token's log-probability, from the tab (docs/api.md, "Logprobs"). */
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
    modalities: z.array(z.literal("text", { error: "only text output is supported" })).nullish(),
    audio: refused("audio output is not supported"),
    prediction: refused("predicted outputs are not supported"),
    reasoning_effort: refused("reasoning_effort is not supported by the served models"),
    verbosity: refused("verbosity is not supported"),
    web_search_options: refused("web search is not available"),
    prompt_cache_key: refused(
      "prompt_cache_key is not used: tabs reuse the KV cache of the conversation they served last",
    ),
    prompt_cache_options: refused(
      "prompt_cache_options is not used: tabs reuse the KV cache of the conversation they served last",
    ),
    prompt_cache_retention: refused(
      "prompt_cache_retention is not used: a tab keeps a conversation's KV cache only while it serves it",
    ),
    moderation: refused("moderation is not offered: no moderation model runs on the tabs"),
    functions: refused("functions is deprecated by OpenAI; use tools"),
    function_call: refused("function_call is deprecated by OpenAI; use tool_choice"),
  })
  .catchall(noUnknownFields)
  .superRefine((req, ctx) => {
    checkStreamOptions(req, ctx);
    if ((req.top_logprobs ?? 0) > SERVED_TOP_LOGPROBS) {
      ctx.addIssue({
        code: "custom",
        path: ["top_logprobs"],
        message: `at most ${SERVED_TOP_LOGPROBS}: the tabs' engine (WebLLM) returns no more alternatives per token`,
      });
    }
    if (req.top_logprobs != null && req.logprobs !== true) {
      ctx.addIssue({
        code: "custom",
        path: ["top_logprobs"],
        message: "top_logprobs needs logprobs: true",
      });
    }
    if (req.logprobs && req.tools?.length && req.tool_choice !== "none") {
      ctx.addIssue({
        code: "custom",
        path: ["logprobs"],
        message:
          "logprobs cannot be given with tools: the model's tokens are Tabgrid's tool envelope, not the answer",
      });
    }
    const names = new Set((req.tools ?? []).map((t) => t.function.name));
    const choice = req.tool_choice;
    if (choice && choice !== "none" && !names.size) {
      ctx.addIssue({ code: "custom", path: ["tool_choice"], message: "tool_choice needs tools" });
    }
    if (choice && typeof choice === "object" && !names.has(choice.function.name)) {
      ctx.addIssue({
        code: "custom",
        path: ["tool_choice", "function", "name"],
        message: `no tool named ${JSON.stringify(choice.function.name)} in tools`,
      });
    }
  });
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

const ChatFinishReasonSchema = z.enum(["stop", "length", "tool_calls"]);

const TopLogprobSchema = z.object({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullable(),
});
/** A choice's `logprobs`: one entry per answer token, as OpenAI sends them. */
export const ChatLogprobsSchema = z.object({
  content: z.array(TopLogprobSchema.extend({ top_logprobs: z.array(TopLogprobSchema) })).nullable(),
  refusal: z.null(),
});
export type ChatLogprobs = z.infer<typeof ChatLogprobsSchema>;
export type ChatFinishReason = z.infer<typeof ChatFinishReasonSchema>;

/** Response of a non-streaming chat completion (`object: "chat.completion"`). */
export const ChatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({
        role: z.literal("assistant"),
        content: z.string().nullable(),
        refusal: z.null(),
        tool_calls: z.array(ToolCallSchema).optional(),
      }),
      finish_reason: ChatFinishReasonSchema.nullable(),
      logprobs: ChatLogprobsSchema.nullable(),
    }),
  ),
  usage: UsageSchema,
});
export type ChatCompletion = z.infer<typeof ChatCompletionSchema>;

/** A tool call in a streamed delta: the first delta of a call has id, type and name. */
export const ToolCallDeltaSchema = z.object({
  index: z.number().int(),
  id: z.string().optional(),
  type: z.literal("function").optional(),
  function: z.object({ name: z.string().optional(), arguments: z.string().optional() }),
});
export type ToolCallDelta = z.infer<typeof ToolCallDeltaSchema>;

/** One SSE `data:` payload of a streaming chat completion. */
export const ChatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({
        role: z.literal("assistant").optional(),
        content: z.string().nullable().optional(),
        refusal: z.null().optional(),
        tool_calls: z.array(ToolCallDeltaSchema).optional(),
      }),
      finish_reason: ChatFinishReasonSchema.nullable(),
      logprobs: ChatLogprobsSchema.nullable(),
    }),
  ),
  usage: UsageSchema.nullable().optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunkSchema>;
