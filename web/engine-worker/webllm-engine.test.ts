import { describe, expect, it } from "vitest";
import { ModelType, postInitAndCheckFieldsChatCompletion } from "@mlc-ai/web-llm";
import type {
  ChatCompletionChunk,
  ChatCompletionRequestStreaming,
  Completion,
  CompletionCreateParamsStreaming,
  CompletionUsage,
  MLCEngineConfig,
} from "@mlc-ai/web-llm";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { EngineError, type LoadProgress } from "../engine/inference-engine.js";
import {
  MIN_LOGPROB,
  TokenLogprobSchema,
  type TokenLogprob,
} from "../../shared/protocol/logprobs.js";
import type { ModelCacheOps, WebLLMEngineApi } from "./webllm-api.js";
import { WebLLMEngine } from "./webllm-engine.js";
import { loadedEngineOver } from "../../test/support/webllm-fakes.js";

/**
 * The WebLLM adapter against WebLLM's own types: a scripted engine object that satisfies the
 * subset of `MLCEngineInterface` the adapter uses (checked by the compiler), recording calls and
 * yielding chunks shaped exactly like WebLLM's stream (text chunks, finish_reason, then a
 * choices-less usage chunk).
 */

const record: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

const usage: CompletionUsage = {
  prompt_tokens: 7,
  completion_tokens: 3,
  total_tokens: 10,
  extra: {
    e2e_latency_s: 0.5,
    prefill_tokens_per_s: 100,
    decode_tokens_per_s: 12.5,
    time_to_first_token_s: 0.1,
    time_per_output_token_s: 0.08,
  },
};

function chatChunk(content: string, finish: ChatCompletionChunk.Choice["finish_reason"] = null) {
  const chunk: ChatCompletionChunk = {
    id: "c1",
    object: "chat.completion.chunk",
    created: 1,
    model: record.model_id,
    choices: [{ index: 0, delta: { role: "assistant", content }, finish_reason: finish }],
  };
  return chunk;
}
const usageChunk: ChatCompletionChunk = {
  id: "c1",
  object: "chat.completion.chunk",
  created: 1,
  model: record.model_id,
  choices: [],
  usage,
};

class ScriptedWebLLM {
  calls: string[] = [];
  chatRequests: ChatCompletionRequestStreaming[] = [];
  completionRequests: CompletionCreateParamsStreaming[] = [];
  interrupted = false;
  private releaseAfterInterrupt: (() => void) | null = null;

  constructor(
    private readonly chatChunks: ChatCompletionChunk[],
    private readonly waitForInterruptAfter = -1,
  ) {}

  api(): WebLLMEngineApi {
    const self = this;
    const api = {
      chat: {
        completions: {
          async create(request: ChatCompletionRequestStreaming) {
            self.chatRequests.push(request);
            return self.stream();
          },
        },
      },
      completions: {
        async create(request: CompletionCreateParamsStreaming) {
          self.completionRequests.push(request);
          const piece = (t: string, finish: "stop" | null): Completion => ({
            id: "t1",
            object: "text_completion",
            created: 1,
            model: record.model_id,
            choices: [{ index: 0, text: t, finish_reason: finish, logprobs: null }],
          });
          async function* gen(): AsyncGenerator<Completion> {
            yield piece("once ", null);
            yield piece("upon", "stop");
            yield { ...piece("", null), choices: [], usage };
          }
          return gen();
        },
      },
      interruptGenerate: () => {
        self.interrupted = true;
        self.releaseAfterInterrupt?.();
      },
      unload: async () => {
        self.calls.push("unload");
      },
      resetChat: async () => {
        self.calls.push("resetChat");
      },
      // Embeddings have their own fake (webllm-embed.test.ts).
      embeddings: {
        create: () => Promise.reject(new Error("not a test of embeddings")),
      },
    } satisfies WebLLMEngineApi;
    return api;
  }

  private async *stream(): AsyncGenerator<ChatCompletionChunk> {
    for (let i = 0; i < this.chatChunks.length; i++) {
      yield this.chatChunks[i]!;
      if (i === this.waitForInterruptAfter) {
        if (!this.interrupted)
          await new Promise<void>((resolve) => (this.releaseAfterInterrupt = resolve));
        yield chatChunk("", "abort");
        break;
      }
    }
    yield usageChunk;
  }
}

function engineOver(scripted: ScriptedWebLLM) {
  const created: { modelId: string; config: MLCEngineConfig }[] = [];
  const engine = new WebLLMEngine(async (modelId, config) => {
    created.push({ modelId, config });
    config.initProgressCallback?.({ progress: 0.5, timeElapsed: 1, text: "Fetching param cache" });
    config.initProgressCallback?.({ progress: 1, timeElapsed: 2, text: "Finish loading" });
    return scripted.api();
  });
  return { engine, created };
}

const sampling = { max_tokens: 16, temperature: 0, top_p: 1, seed: 42, stop: ["\n\n"] };

describe("WebLLMEngine", () => {
  it("loads with the catalog record and forwards progress", async () => {
    const { engine, created } = engineOver(new ScriptedWebLLM([]));
    const progress: LoadProgress[] = [];
    await engine.load(record, (p) => progress.push(p));
    expect(created[0]?.modelId).toBe(record.model_id);
    expect(created[0]?.config.appConfig?.model_list).toEqual([record]);
    expect(progress).toEqual([
      { progress: 0.5, text: "Fetching param cache" },
      { progress: 1, text: "Finish loading" },
    ]);
    expect((await engine.stats()).loadedModel).toBe(record.model_id);
  });

  it("streams chat deltas and takes usage and decode speed from the final chunk", async () => {
    const scripted = new ScriptedWebLLM([
      chatChunk("Hello"),
      chatChunk(", "),
      chatChunk("world", "stop"),
    ]);
    const { engine } = engineOver(scripted);
    await engine.load(record, () => {});
    const deltas: string[] = [];
    const result = await engine.chat(
      { messages: [{ role: "user", content: "hi" }], sampling },
      (t) => deltas.push(t),
    );
    expect(deltas).toEqual(["Hello", ", ", "world"]);
    expect(result).toEqual({
      finishReason: "stop",
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
      decodeTokensPerSecond: 12.5,
    });
    expect(scripted.chatRequests[0]).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 16,
      temperature: 0,
      top_p: 1,
      seed: 42,
      stop: ["\n\n"],
    });
    // WebLLM keeps or resets its conversation itself (webllm-conversation.test.ts).
    expect(scripted.calls).not.toContain("resetChat");
    expect((await engine.stats()).lastDecodeTokensPerSecond).toBe(12.5);
  });

  it("translates a JSON constraint to WebLLM's json_object + schema string, with penalties, logit_bias and names", async () => {
    const scripted = new ScriptedWebLLM([chatChunk('{"a":1}', "stop")]);
    const { engine } = engineOver(scripted);
    await engine.load(record, () => {});
    const schema = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };
    await engine.chat(
      {
        messages: [{ role: "user", content: "hi", name: "ada" }],
        sampling: {
          ...sampling,
          presence_penalty: 0.5,
          frequency_penalty: -0.5,
          logit_bias: { "42": -100 },
          constraint: { kind: "json", schema },
        },
      },
      () => {},
    );
    const req = scripted.chatRequests[0]!;
    expect(req.response_format).toEqual({ type: "json_object", schema: JSON.stringify(schema) });
    expect(req).toMatchObject({
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { "42": -100 },
      messages: [{ role: "user", content: "hi", name: "ada" }],
    });
    // WebLLM's own request check accepts what the adapter builds (no tools: every chat model).
    expect(req.tools).toBeUndefined();
    expect(() =>
      postInitAndCheckFieldsChatCompletion(req, record.model_id, ModelType.LLM),
    ).not.toThrow();
  });

  it("sends no response_format for free text", async () => {
    const scripted = new ScriptedWebLLM([chatChunk("x", "stop")]);
    const { engine } = engineOver(scripted);
    await engine.load(record, () => {});
    await engine.chat({ messages: [{ role: "user", content: "hi" }], sampling }, () => {});
    expect(scripted.chatRequests[0]?.response_format).toBeUndefined();
  });

  it("uses the raw completion API for plain prompts", async () => {
    const scripted = new ScriptedWebLLM([]);
    const { engine } = engineOver(scripted);
    await engine.load(record, () => {});
    const deltas: string[] = [];
    const result = await engine.complete({ prompt: "Story:", sampling }, (t) => deltas.push(t));
    expect(deltas.join("")).toBe("once upon");
    expect(result.finishReason).toBe("stop");
    expect(scripted.completionRequests[0]).toMatchObject({ prompt: "Story:", stream: true });
  });

  it("abort calls interruptGenerate and the generation ends with finishReason abort", async () => {
    const scripted = new ScriptedWebLLM([chatChunk("one "), chatChunk("two ")], 0);
    const { engine } = engineOver(scripted);
    await engine.load(record, () => {});
    const deltas: string[] = [];
    const running = engine.chat({ messages: [{ role: "user", content: "go" }], sampling }, (t) => {
      deltas.push(t);
      void engine.abort();
    });
    const result = await running;
    expect(scripted.interrupted).toBe(true);
    expect(result.finishReason).toBe("abort");
    expect(deltas).toEqual(["one "]);
  });

  it("reports the GPU device lost while loading as out_of_memory (its usual cause)", async () => {
    const lost = new Error("The WebGPU device was lost while loading the model.");
    lost.name = "DeviceLostError";
    const engine = new WebLLMEngine(async () => {
      throw lost;
    });
    const err = await engine.load(record, () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: "out_of_memory" });
    expect((err as EngineError).toPayload().message).toMatch(
      /GPU device was lost.*out of GPU memory/,
    );
  });

  it("clears a damaged cached model and downloads it again, once", async () => {
    const cleared: string[] = [];
    const cache = {
      choose: async () => ({ backend: "cache" as const, cacheRefused: null }),
      has: async () => true,
      clear: async (m: ModelRecord) => void cleared.push(m.model_id),
    };
    let attempts = 0;
    const scripted = new ScriptedWebLLM([]);
    const engine = new WebLLMEngine(
      async () => {
        attempts++;
        if (attempts === 1) throw new SyntaxError("Unexpected end of JSON input");
        return scripted.api();
      },
      undefined,
      cache,
    );
    const progress: string[] = [];
    await engine.load(record, (p) => progress.push(p.text));
    expect(attempts).toBe(2);
    expect(cleared).toEqual([record.model_id]);
    expect(progress.some((t) => /damaged; cleared it, downloading again/.test(t))).toBe(true);
    expect((await engine.stats()).loadedModel).toBe(record.model_id);

    // Damaged again after the fresh download: give up with the error instead of looping.
    attempts = 0;
    const broken = new WebLLMEngine(
      async () => {
        attempts++;
        throw new SyntaxError("Unexpected end of JSON input");
      },
      undefined,
      cache,
    );
    await expect(broken.load(record, () => {})).rejects.toMatchObject({ code: "load_failed" });
    expect(attempts).toBe(2);
  });

  it("maps other load failures to load_failed and generation failures to engine_error", async () => {
    const f16 = new Error("This model requires feature shader-f16");
    f16.name = "ShaderF16SupportError";
    const failing = new WebLLMEngine(async () => {
      throw f16;
    });
    await expect(failing.load(record, () => {})).rejects.toMatchObject({
      code: "load_failed",
      message: "ShaderF16SupportError: This model requires feature shader-f16",
    });

    const offline = new WebLLMEngine(async () => {
      throw new TypeError("Failed to execute 'add' on 'Cache': Request failed");
    });
    await expect(offline.load(record, () => {})).rejects.toMatchObject({
      code: "load_failed",
      message: expect.stringMatching(/^could not download the model's files/),
    });

    const scripted = new ScriptedWebLLM([]);
    const api = scripted.api();
    api.chat.completions.create = async () => {
      throw new Error("Last message should be from either `user` or `tool`");
    };
    const engine = new WebLLMEngine(async () => api);
    await engine.load(record, () => {});
    await expect(
      engine.chat({ messages: [{ role: "assistant", content: "x" }], sampling }, () => {}),
    ).rejects.toMatchObject({ code: "engine_error" });

    // A prompt over the context window is the request's fault, not the engine's (WebLLM 0.2.86
    // throws its own class for it at prefill).
    api.chat.completions.create = async () => {
      const e = new Error(
        "Prompt tokens exceed context window size: number of prompt tokens: 5000",
      );
      e.name = "ContextWindowSizeExceededError";
      throw e;
    };
    await expect(
      engine.chat({ messages: [{ role: "user", content: "x" }], sampling }, () => {}),
    ).rejects.toMatchObject({ code: "bad_request" });
  });

  it("blames storage, not the network, when the browser refuses the cache (an embedded frame)", async () => {
    // The message seen on a real third-party site: the old classifier called it a download failure.
    const refused = new DOMException(
      "Failed to execute 'open' on 'CacheStorage': An attempt was made to break through the security policy of the user agent.",
      "SecurityError",
    );
    const err = await new WebLLMEngine(async () => {
      throw refused;
    })
      .load(record, () => {})
      .then(
        () => new EngineError("engine_error", "it loaded"),
        (e: unknown) => e as EngineError,
      );
    expect(err).toMatchObject({ code: "load_failed" });
    expect(err.message).toMatch(/^this browser does not let the tab store the model's files here/);
    expect(err.message).not.toMatch(/could not download|network/);
  });

  it("loads into WebLLM's IndexedDB cache where the Cache API is refused, and says so", async () => {
    const created: MLCEngineConfig[] = [];
    const cache: ModelCacheOps = {
      choose: async () => ({
        backend: "indexeddb",
        cacheRefused: "SecurityError: Failed to execute 'open' on 'CacheStorage'",
      }),
      has: async () => false,
      clear: async () => {},
    };
    const progress: string[] = [];
    const ok = new WebLLMEngine(
      async (_id, config) => {
        created.push(config);
        return new ScriptedWebLLM([]).api();
      },
      undefined,
      cache,
    );
    await ok.load(record, (p) => progress.push(p.text));
    expect(created[0]?.appConfig).toMatchObject({
      cacheBackend: "indexeddb",
      useIndexedDBCache: true,
    });
    expect(progress[0]).toMatch(/model cache: IndexedDB, because the Cache API is refused here/);

    // Offline with the fallback: a download failure, and the message names the cache used.
    const offline = new WebLLMEngine(
      async () => {
        throw new TypeError("Failed to fetch");
      },
      undefined,
      cache,
    );
    const err = await offline
      .load(record, () => {})
      .then(
        () => new EngineError("engine_error", "it loaded"),
        (e: unknown) => e as EngineError,
      );
    expect(err.message).toMatch(
      /^could not download the model's files \(network or model host unavailable\) \(model cache: IndexedDB/,
    );
    expect(err.message).not.toMatch(/does not let the tab store/);
  });

  it("reports device_lost when WebLLM dropped a loaded model by itself", async () => {
    const scripted = new ScriptedWebLLM([]);
    const api = scripted.api();
    api.chat.completions.create = async () => {
      const e = new Error("Model not loaded before trying to complete ChatCompletionRequest.");
      e.name = "ModelNotLoadedError";
      throw e;
    };
    const engine = new WebLLMEngine(async () => api);
    await engine.load(record, () => {});
    await expect(
      engine.chat({ messages: [{ role: "user", content: "x" }], sampling }, () => {}),
    ).rejects.toMatchObject({ code: "device_lost" });
  });

  it("refuses to generate before a model is loaded", async () => {
    const engine = new WebLLMEngine(async () => new ScriptedWebLLM([]).api());
    await expect(
      engine.chat({ messages: [{ role: "user", content: "x" }], sampling }, () => {}),
    ).rejects.toMatchObject({ code: "not_loaded" });
  });

  it("continues another tab's answer through the raw completion API with the chat template", async () => {
    const scripted = new ScriptedWebLLM([]);
    const conv = {
      system_template: "<s>{system_message}\n",
      system_message: "sys",
      roles: { user: "U", assistant: "A" },
      seps: ["\n"],
      stop_str: ["</s>"],
      stop_token_ids: [2],
    };
    const engine = new WebLLMEngine(
      async () => scripted.api(),
      async (m) => {
        expect(m.model_id).toBe(record.model_id);
        return conv;
      },
    );
    await engine.load(record, () => {});
    const deltas: string[] = [];
    const result = await engine.chat(
      {
        messages: [{ role: "user", content: "tell a story" }],
        sampling: { max_tokens: 16, stop: ["THE END"] },
        continueFrom: "Once",
      },
      (t) => deltas.push(t),
    );
    expect(scripted.chatRequests).toHaveLength(0);
    expect(scripted.completionRequests[0]).toMatchObject({
      prompt: "<s>sys\nU: tell a story\nA: Once",
      stop: ["THE END", "</s>"],
      stream: true,
    });
    expect(deltas.join("")).toBe("once upon");
    expect(result.usage.total_tokens).toBe(10);
  });

  it("after a failover, counts the delivered text with the model's tokenizer and writes the rest of the answer's max_tokens", async () => {
    // A tokenizer of whole words: "Once upon a" is 3 tokens (11 bytes by the coordinator's bound).
    const words = (text: string) => text.split(" ").map((_, i) => i);
    const continued = async (answerMaxTokens: number | undefined, tokenizer = true) => {
      const scripted = new ScriptedWebLLM([]);
      const engine = await loadedEngineOver(scripted, tokenizer ? words : null);
      const result = await engine.chat(
        {
          messages: [{ role: "user", content: "tell a story" }],
          sampling: { max_tokens: 1 },
          continueFrom: "Once upon a",
          ...(answerMaxTokens !== undefined ? { answerMaxTokens } : {}),
        },
        () => {},
      );
      return { result, asked: scripted.completionRequests[0]?.max_tokens ?? null };
    };
    // 8 for the whole answer, 3 delivered: 5 left, not the coordinator's 1; WebLLM's prompt count
    // (7) held the 3 delivered tokens, which move to continuedTokens.
    const counted = await continued(8);
    expect(counted.asked).toBe(5);
    expect(counted.result).toMatchObject({
      continuedTokens: 3,
      usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
    });
    // Already full by its count: nothing is generated, the answer ends with "length".
    const full = await continued(3);
    expect(full.asked).toBeNull();
    expect(full.result).toMatchObject({ finishReason: "length", continuedTokens: 3 });
    expect(full.result.usage.completion_tokens).toBe(0);
    // An older coordinator (no answerMaxTokens): its bound, and the count for the usage.
    const older = await continued(undefined);
    expect(older.asked).toBe(1);
    expect(older.result.continuedTokens).toBe(3);
    // No tokenizer in reach: the coordinator's bound, and no count; and when by that bound (a
    // token per byte: 11) the answer may be full, it ends there instead of writing past it.
    const blind = await continued(20, false);
    expect(blind.asked).toBe(1);
    expect(blind.result.continuedTokens).toBeUndefined();
    const blindFull = await continued(8, false);
    expect(blindFull.asked).toBeNull();
    expect(blindFull.result).toMatchObject({ finishReason: "length" });
  });

  it("asks WebLLM for logprobs and returns each chunk's entry, within the protocol's bounds", async () => {
    const enc = (t: string) => Array.from(new TextEncoder().encode(t));
    const entry = (token: string, logprob: number, top: [string, number][]) => ({
      token,
      bytes: enc(token),
      logprob,
      top_logprobs: top.map(([t, lp]) => ({ token: t, bytes: enc(t), logprob: lp })),
    });
    const withLogprobs = (chunk: ChatCompletionChunk, e: ReturnType<typeof entry>) => {
      chunk.choices[0]!.logprobs = { content: [e] };
      return chunk;
    };
    const long = "é".repeat(40); // 80 bytes: over the protocol's 64
    const scripted = new ScriptedWebLLM([
      withLogprobs(
        chatChunk("Hi"),
        entry("Hi", -0.1, [
          ["Hi", -0.1],
          ["Yo", -2.5],
        ]),
      ),
      // A grammar-masked alternative is -Infinity in WebLLM (log of 0).
      withLogprobs(
        chatChunk("!", "stop"),
        entry("!", -0.2, [
          ["!", -0.2],
          [long, -Infinity],
        ]),
      ),
    ]);
    const { engine } = engineOver(scripted);
    await engine.load(record, () => {});
    const pieces: Array<[string, TokenLogprob[] | undefined]> = [];
    const ask = async (top: number) =>
      engine.chat(
        {
          messages: [{ role: "user", content: "hi" }],
          sampling: { ...sampling, logprobs: { top } },
        },
        (text, logprobs) => pieces.push([text, logprobs]),
      );
    const two = await ask(2);
    // Each piece of text comes with its own tokens' entries (the tab streams them on).
    expect(pieces).toEqual([
      ["Hi", two.logprobs?.slice(0, 1)],
      ["!", two.logprobs?.slice(1, 2)],
    ]);
    expect(two.logprobs).toEqual([
      {
        token: "Hi",
        logprob: -0.1,
        top: [
          { token: "Hi", logprob: -0.1 },
          { token: "Yo", logprob: -2.5 },
        ],
      },
      {
        token: "!",
        logprob: -0.2,
        top: [
          { token: "!", logprob: -0.2 },
          { token: "é".repeat(32), logprob: MIN_LOGPROB },
        ],
      },
    ]);
    // What the adapter asks passes WebLLM's own request check.
    expect(scripted.chatRequests[0]).toMatchObject({ logprobs: true, top_logprobs: 2 });
    expect(() =>
      postInitAndCheckFieldsChatCompletion(
        scripted.chatRequests[0]!,
        record.model_id,
        ModelType.LLM,
      ),
    ).not.toThrow();
    // Every entry is one the coordinator's frame schema accepts.
    for (const e of two.logprobs ?? []) expect(TokenLogprobSchema.parse(e)).toEqual(e);

    // top 0: WebLLM records logprobs only with top_logprobs > 0, so 1 is asked and cut off.
    const zero = await ask(0);
    expect(scripted.chatRequests[1]).toMatchObject({ logprobs: true, top_logprobs: 1 });
    expect(zero.logprobs?.map((e) => e.top)).toEqual([[], []]);

    // Not asked: no logprobs fields for WebLLM and none in the result.
    await engine.chat({ messages: [{ role: "user", content: "hi" }], sampling }, () => {});
    expect(scripted.chatRequests[2]?.logprobs).toBeUndefined();
  });
});

describe("ContextWindowSizeExceededError after a failover", () => {
  it("a continuation whose prompt plus delivered text overflows the context does not call the client's request invalid", async () => {
    // A tab died near the end of an answer that nearly filled the context window; this tab
    // continues with the rendered conversation plus the delivered text (completion API), which
    // its tokenizer counts a token or two longer, and WebLLM throws ContextWindowSizeExceededError
    // at prefill. engine-errors.ts makes that `bad_request`: the request is called invalid
    // although the first tab ran it and the client holds part of its answer; two independent
    // trusted tabs continuing it give the client a 400 invalid_request_error (job-machine.ts
    // confirmsInvalid) for a valid request. The answer reached the context window: an honest
    // continuation ends it (finish "length"), or at worst fails as the engine's, not the client's.
    const scripted = new ScriptedWebLLM([]);
    const fake = {
      processor: undefined,
      api: () => {
        const api = scripted.api();
        api.completions.create = async () => {
          const e = new Error(
            "Prompt tokens exceed context window size: number of prompt tokens: 4097; context window size: 4096",
          );
          e.name = "ContextWindowSizeExceededError";
          throw e;
        };
        return api;
      },
    };
    const engine = await loadedEngineOver(fake, (text) => text.split(" ").map((_, i) => i));
    const outcome = await engine
      .chat(
        {
          messages: [{ role: "user", content: "tell a long story" }],
          sampling: { max_tokens: 4000 },
          continueFrom: "Once upon a time",
          answerMaxTokens: 4000,
        },
        () => {},
      )
      .then(
        (r) => ({ finishReason: r.finishReason }),
        (e: EngineError) => ({ code: e.code }),
      );
    expect(outcome).not.toEqual({ code: "bad_request" });
  });
});
