import type { ChatCompletionCreateParamsBase } from "openai/resources/chat/completions";
import type { CompletionCreateParamsBase } from "openai/resources/completions";
import type { EmbeddingCreateParams } from "openai/resources/embeddings";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { ChatCompletionRequestSchema } from "./chat.js";
import { CompletionRequestSchema } from "./completions.js";
import { EmbeddingRequestSchema } from "./embeddings.js";
import { paramFromPath } from "./errors.js";

/**
 * "No silent drops", field by field against the `openai` package's own request types: each table
 * is typed `Record<keyof …Params, Case>`, so a field OpenAI adds to its request schema breaks the
 * typecheck until it is listed here as honoured or refused. An honoured value must come through
 * parsing unchanged; a refused one must be a 400 naming the field with a reason of its own (not
 * the unknown-field refusal, which says the field is not OpenAI's).
 */
interface Case {
  /** Request fields (merged into a valid request) that are accepted and kept. */
  honoured?: Record<string, unknown>[];
  /** Request fields that are refused with 400 naming the case's field. */
  refused?: Record<string, unknown>[];
}

const UNKNOWN_FIELD = "unknown field";

function check(schema: z.ZodType, base: Record<string, unknown>, table: Record<string, Case>) {
  const rows = Object.entries(table).flatMap(([field, c]) => [
    ...(c.honoured ?? []).map((extra) => ({ field, extra, honoured: true })),
    ...(c.refused ?? []).map((extra) => ({ field, extra, honoured: false })),
  ]);
  it.each(rows)("$field $extra (honoured: $honoured)", ({ field, extra, honoured }) => {
    const r = schema.safeParse({ ...base, ...extra });
    if (honoured) {
      expect(r.error?.issues).toBeUndefined();
      const parsed = r.data as Record<string, unknown>;
      expect(parsed[field]).toEqual(extra[field] ?? base[field]);
      return;
    }
    expect(r.success).toBe(false);
    const issue = r.error!.issues[0]!;
    expect(paramFromPath(issue.path)?.split(/[.[]/)[0]).toBe(field);
    expect(issue.message).not.toContain(UNKNOWN_FIELD);
  });
}

const textPart = { type: "text", text: "x" };
const tool = { type: "function", function: { name: "f", parameters: { type: "object" } } };

const chat = {
  audio: { refused: [{ audio: { voice: "alloy", format: "mp3" } }] },
  frequency_penalty: { honoured: [{ frequency_penalty: -1.5 }] },
  function_call: { refused: [{ function_call: "auto" }] },
  functions: { refused: [{ functions: [{ name: "f" }] }] },
  logit_bias: { honoured: [{ logit_bias: { "42": -100 } }] },
  logprobs: { honoured: [{ logprobs: true }] },
  max_completion_tokens: { honoured: [{ max_completion_tokens: 7 }] },
  max_tokens: { honoured: [{ max_tokens: 7 }] },
  messages: {
    honoured: [{}],
    refused: [
      { messages: [{ role: "user", content: [{ ...textPart, prompt_cache_breakpoint: {} }] }] },
      { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] },
      { messages: [{ role: "assistant", content: "x", audio: { id: "a" } }] },
      { messages: [{ role: "function", name: "f", content: "x" }] },
    ],
  },
  metadata: { refused: [{ metadata: { a: "b" } }] },
  modalities: {
    honoured: [{ modalities: ["text"] }],
    refused: [{ modalities: ["text", "audio"] }],
  },
  model: { honoured: [{ model: "some-model" }] },
  moderation: { refused: [{ moderation: { model: "omni-moderation-latest" } }] },
  n: { honoured: [{ n: 3 }] },
  parallel_tool_calls: { honoured: [{ tools: [tool], parallel_tool_calls: false }] },
  prediction: { refused: [{ prediction: { type: "content", content: "x" } }] },
  presence_penalty: { honoured: [{ presence_penalty: 2 }] },
  prompt_cache_key: { refused: [{ prompt_cache_key: "k" }] },
  prompt_cache_options: { refused: [{ prompt_cache_options: { mode: "explicit" } }] },
  prompt_cache_retention: { refused: [{ prompt_cache_retention: "24h" }] },
  reasoning_effort: { refused: [{ reasoning_effort: "low" }] },
  response_format: { honoured: [{ response_format: { type: "json_object" } }] },
  safety_identifier: { honoured: [{ safety_identifier: "s-1" }] },
  seed: { honoured: [{ seed: 42 }] },
  service_tier: {
    honoured: [{ service_tier: "auto" }, { service_tier: "default" }],
    refused: [{ service_tier: "flex" }, { service_tier: "priority" }],
  },
  stop: { honoured: [{ stop: ["\n\n"] }] },
  store: { honoured: [{ store: false }], refused: [{ store: true }] },
  stream: { honoured: [{ stream: true }] },
  stream_options: {
    honoured: [{ stream: true, stream_options: { include_usage: true } }],
    refused: [
      { stream: true, stream_options: { include_obfuscation: true } },
      { stream_options: { include_usage: true } },
    ],
  },
  temperature: { honoured: [{ temperature: 0 }] },
  tool_choice: { honoured: [{ tools: [tool], tool_choice: "required" }] },
  tools: {
    honoured: [{ tools: [tool] }],
    refused: [{ tools: [{ type: "custom", custom: { name: "c" } }] }],
  },
  top_logprobs: {
    honoured: [{ logprobs: true, top_logprobs: 5 }],
    refused: [{ logprobs: true, top_logprobs: 20 }],
  },
  top_p: { honoured: [{ top_p: 0.9 }] },
  user: { honoured: [{ user: "u-1" }] },
  verbosity: { refused: [{ verbosity: "low" }] },
  web_search_options: { refused: [{ web_search_options: {} }] },
} satisfies Record<keyof ChatCompletionCreateParamsBase, Case>;

const completions = {
  best_of: { honoured: [{ best_of: 1 }], refused: [{ best_of: 3 }] },
  echo: { honoured: [{ echo: false }], refused: [{ echo: true }] },
  frequency_penalty: { honoured: [{ frequency_penalty: 1 }] },
  logit_bias: { honoured: [{ logit_bias: { "7": 3 } }] },
  logprobs: { refused: [{ logprobs: 2 }] },
  max_tokens: { honoured: [{ max_tokens: 9 }] },
  model: { honoured: [{ model: "some-model" }] },
  n: { honoured: [{ n: 2 }] },
  presence_penalty: { honoured: [{ presence_penalty: -1 }] },
  prompt: { honoured: [{}], refused: [{ prompt: ["a", "b"] }, { prompt: [1, 2] }] },
  seed: { honoured: [{ seed: 1 }] },
  stop: { honoured: [{ stop: "END" }] },
  stream: { honoured: [{ stream: false }] },
  stream_options: { honoured: [{ stream: true, stream_options: { include_usage: false } }] },
  suffix: { refused: [{ suffix: "}" }] },
  temperature: { honoured: [{ temperature: 2 }] },
  top_p: { honoured: [{ top_p: 1 }] },
  user: { honoured: [{ user: "u" }] },
} satisfies Record<keyof CompletionCreateParamsBase, Case>;

const embeddings = {
  dimensions: { honoured: [{ dimensions: 384 }] },
  encoding_format: {
    honoured: [{ encoding_format: "base64" }],
    refused: [{ encoding_format: "int8" }],
  },
  input: { honoured: [{ input: ["a", "b"] }], refused: [{ input: [1, 2, 3] }] },
  model: { honoured: [{ model: "some-embedder" }] },
  user: { honoured: [{ user: "u" }] },
} satisfies Record<keyof EmbeddingCreateParams, Case>;

describe("every field of OpenAI's chat completions request is honoured or refused by name", () => {
  check(
    ChatCompletionRequestSchema,
    { model: "m", messages: [{ role: "user", content: "x" }] },
    chat,
  );
});

describe("every field of OpenAI's completions request is honoured or refused by name", () => {
  check(CompletionRequestSchema, { model: "m", prompt: "x" }, completions);
});

describe("every field of OpenAI's embeddings request is honoured or refused by name", () => {
  check(EmbeddingRequestSchema, { model: "m", input: "x" }, embeddings);
});
