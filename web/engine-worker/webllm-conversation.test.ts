import { describe, expect, it } from "vitest";
import type {
  ChatCompletionChunk,
  ChatCompletionMessageParam,
  ChatCompletionRequestStreaming,
  Completion,
  CompletionCreateParamsStreaming,
  LogitProcessor,
} from "@mlc-ai/web-llm";
import type { ChatMessage } from "../../shared/protocol/job.js";
import { TINY_RECORD, loadedEngineOver } from "../../test/support/webllm-fakes.js";
import type { WebLLMEngineApi } from "./webllm-api.js";

/**
 * The tab keeps its engine's conversation when the next job extends it. The fake below holds a
 * conversation the way WebLLM's MLCEngine does (engine.ts `preparePrefillInput` in 0.2.86,
 * `prefill` in 0.2.79): a chat request whose messages before the last equal the held conversation
 * (the previous request's messages plus the answer written), after an answer that ended with
 * "stop", prefills only its last message on top of the KV cache; any other chat request resets
 * and prefills everything; `resetChat()` and the raw completion API empty the cache. Usage counts
 * what was prefilled, one token per word, as WebLLM's `usage.prompt_tokens` counts this round's
 * prefill.
 */

const record = TINY_RECORD;

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
const key = (m: ChatCompletionMessageParam) => JSON.stringify([m.role, m.content]);

class ConversationalWebLLM {
  /** The conversation the KV cache holds; empty after a reset. */
  held: ChatCompletionMessageParam[] = [];
  prefilled: number[] = [];
  resets = 0;
  /** The adapter's teacher forcer, run over a 4-token vocabulary for each step of a request. */
  processor: LogitProcessor | undefined;

  constructor(private readonly answer = "yes indeed") {}

  api(): WebLLMEngineApi {
    const self = this;
    const usageOf = (prompt: number, completion: number) => ({
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      extra: {
        e2e_latency_s: 0.2,
        prefill_tokens_per_s: 100,
        decode_tokens_per_s: 10,
        time_to_first_token_s: prompt / 100,
        time_per_output_token_s: 0.1,
      },
    });
    return {
      chat: {
        completions: {
          async create(request: ChatCompletionRequestStreaming) {
            const history = request.messages.slice(0, -1);
            const extends_ =
              self.held.length > 0 &&
              history.length === self.held.length &&
              history.every((m, i) => key(m) === key(self.held[i]!));
            const fed = extends_ ? request.messages.slice(-1) : request.messages;
            const prompt = fed.reduce((n, m) => n + words(String(m.content)), 0);
            self.prefilled.push(prompt);
            self.held = [...request.messages, { role: "assistant", content: self.answer }];
            for (let step = 0; self.processor && step < (request.max_tokens ?? 0); step++) {
              const logits = self.processor.processLogits(new Float32Array(4));
              self.processor.processSampledToken?.(logits.indexOf(Math.max(...logits)));
            }
            const answer = self.answer;
            async function* gen(): AsyncGenerator<ChatCompletionChunk> {
              const base = { id: "c", object: "chat.completion.chunk" as const, created: 1 };
              yield {
                ...base,
                model: record.model_id,
                choices: [{ index: 0, delta: { content: answer }, finish_reason: "stop" }],
              };
              yield { ...base, model: record.model_id, choices: [], usage: usageOf(prompt, 2) };
            }
            return gen();
          },
        },
      },
      completions: {
        async create(request: CompletionCreateParamsStreaming) {
          self.held = [];
          self.prefilled.push(words(String(request.prompt)));
          async function* gen(): AsyncGenerator<Completion> {
            const base = { id: "t", object: "text_completion" as const, created: 1 };
            yield {
              ...base,
              model: record.model_id,
              choices: [{ index: 0, text: "ok", finish_reason: "stop", logprobs: null }],
            };
            yield { ...base, model: record.model_id, choices: [], usage: usageOf(1, 1) };
          }
          return gen();
        },
      },
      interruptGenerate: () => {},
      unload: async () => {},
      resetChat: async () => {
        self.resets++;
        self.held = [];
      },
      embeddings: { create: () => Promise.reject(new Error("not a test of embeddings")) },
    } satisfies WebLLMEngineApi;
  }
}

async function tab(answer?: string) {
  const fake = new ConversationalWebLLM(answer);
  const engine = await loadedEngineOver(fake, (text) => text.split(" ").map((_, i) => i + 1));
  return { engine, fake };
}

const sampling = { max_tokens: 8 };
const first: ChatMessage[] = [
  { role: "system", content: "you answer briefly" },
  { role: "user", content: "is the sky blue on a clear day" },
];

describe("WebLLMEngine keeps WebLLM's conversation across jobs", () => {
  it("a follow-up turn that extends the last job's messages and answer prefills only its new message", async () => {
    const { engine, fake } = await tab();
    const one = await engine.chat({ messages: first, sampling }, () => {});
    const second: ChatMessage[] = [
      ...first,
      { role: "assistant", content: "yes indeed" },
      { role: "user", content: "and at night" },
    ];
    const two = await engine.chat({ messages: second, sampling }, () => {});
    expect(one.usage.prompt_tokens).toBe(11);
    // Only "and at night": the history was already in WebLLM's KV cache.
    expect(two.usage.prompt_tokens).toBe(3);
    expect(fake.resets).toBe(0);
  });

  it("a chat that does not extend the held conversation is read whole (WebLLM resets by itself)", async () => {
    const { engine, fake } = await tab();
    await engine.chat({ messages: first, sampling }, () => {});
    // Another client's conversation, and the same conversation with a different answer.
    const other = await engine.chat(
      { messages: [{ role: "user", content: "name a colour" }], sampling },
      () => {},
    );
    const edited = await engine.chat(
      {
        messages: [
          ...first,
          { role: "assistant", content: "no" },
          { role: "user", content: "and at night" },
        ],
        sampling,
      },
      () => {},
    );
    expect(other.usage.prompt_tokens).toBe(3);
    expect(edited.usage.prompt_tokens).toBe(15);
    expect(fake.prefilled).toEqual([11, 3, 15]);
  });

  it("an audit re-scores from an empty cache even when its input extends the held conversation", async () => {
    const { engine, fake } = await tab();
    await engine.chat({ messages: first, sampling }, () => {});
    const followUp: ChatMessage[] = [
      ...first,
      { role: "assistant", content: "yes indeed" },
      { role: "user", content: "and at night" },
    ];
    await engine.score({
      input: { kind: "chat", messages: followUp },
      sampling,
      answer: "no",
      seed: 1,
      scoreStop: false,
      maxTokens: 8,
    });
    expect(fake.resets).toBe(1);
    // The whole follow-up (11 + 2 + 3 words), as a tab that never served it reads it.
    expect(fake.prefilled).toEqual([11, 16]);
  });
});
