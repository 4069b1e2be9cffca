import { describe, expect, it } from "vitest";
import {
  ModelType,
  postInitAndCheckFieldsEmbedding,
  prebuiltAppConfig,
  type CreateEmbeddingResponse,
  type EmbeddingCreateParams,
  type MLCEngineConfig,
} from "@mlc-ai/web-llm";
import { DEFAULT_MODELS, type ModelRecord } from "../../shared/models/catalog.js";
import { EngineError } from "../engine/inference-engine.js";
import type { WebLLMEngineApi } from "./webllm-api.js";
import { WebLLMEngine } from "./webllm-engine.js";

/**
 * The WebLLM adapter's embeddings against WebLLM's own interface, up to `engine.embeddings.create`:
 * a scripted engine (typed as the subset of MLCEngineInterface the adapter uses) checks each
 * request with WebLLM's own field check (`postInitAndCheckFieldsEmbedding`) and answers in WebLLM's
 * `CreateEmbeddingResponse` shape.
 */

const record = DEFAULT_MODELS.find((r) => r.model_id === "snowflake-arctic-embed-s-q0f32-MLC-b4")!;

function response(vectors: number[][], promptTokens = 9): CreateEmbeddingResponse {
  return {
    object: "list",
    model: record.model_id,
    data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })),
    usage: {
      prompt_tokens: promptTokens,
      total_tokens: promptTokens,
      extra: { prefill_tokens_per_s: 100 },
    },
  };
}

class ScriptedEmbedder {
  requests: EmbeddingCreateParams[] = [];
  calls: string[] = [];
  constructor(private readonly answer: (r: EmbeddingCreateParams) => CreateEmbeddingResponse) {}

  api(): WebLLMEngineApi {
    const self = this;
    const unused = () => Promise.reject(new Error("not an embedding call"));
    return {
      chat: { completions: { create: unused } },
      completions: { create: unused },
      embeddings: {
        async create(request: EmbeddingCreateParams) {
          postInitAndCheckFieldsEmbedding(request, record.model_id);
          self.requests.push(request);
          return self.answer(request);
        },
      },
      interruptGenerate: () => {},
      unload: async () => {},
      // An embedding pipeline has no chat: WebLLM throws IncorrectPipelineLoadedError here.
      resetChat: async () => {
        self.calls.push("resetChat");
        throw new Error("IncorrectPipelineLoadedError: resetChat needs an LLMChatPipeline");
      },
    };
  }
}

async function loaded(scripted: ScriptedEmbedder, model: ModelRecord = record) {
  const created: MLCEngineConfig[] = [];
  const engine = new WebLLMEngine(
    async (_id, config) => {
      created.push(config);
      return scripted.api();
    },
    undefined,
    {
      choose: async () => ({ backend: "cache" as const, cacheRefused: null }),
      has: async () => true,
      clear: async () => {},
    },
  );
  await engine.load(model, () => {});
  return { engine, created };
}

const vec = (x: number, n = 384) => Array.from({ length: n }, (_, i) => x + i / 1000);

describe("WebLLMEngine embeddings", () => {
  it("hands WebLLM the catalog record marked as an embedding model", async () => {
    const { created } = await loaded(new ScriptedEmbedder(() => response([])));
    const sent = created[0]?.appConfig?.model_list[0];
    expect(sent?.model_type).toBe(ModelType.embedding);
    // The same record as WebLLM's own prebuilt list.
    const theirs = prebuiltAppConfig.model_list.find((r) => r.model_id === record.model_id);
    expect(sent?.model_lib).toBe(theirs?.model_lib);
    expect(theirs?.model_type).toBe(ModelType.embedding);
  });

  it("calls engine.embeddings.create with the texts and the model, and returns float32 vectors in input order", async () => {
    // WebLLM may answer out of order: the adapter places each vector by its index.
    const scripted = new ScriptedEmbedder(() => {
      const r = response([vec(0.2), vec(0.1)]);
      r.data = [
        { object: "embedding", index: 1, embedding: vec(0.2) },
        { object: "embedding", index: 0, embedding: vec(0.1) },
      ];
      return r;
    });
    const { engine } = await loaded(scripted);
    const result = await engine.embed({ texts: ["first", "second"], dimensions: 384 });
    expect(scripted.requests).toEqual([{ input: ["first", "second"], model: record.model_id }]);
    expect(result.promptTokens).toBe(9);
    expect(result.vectors.map((v) => v instanceof Float32Array)).toEqual([true, true]);
    expect(Array.from(result.vectors[0]!)).toEqual(Array.from(Float32Array.from(vec(0.1))));
    expect(Array.from(result.vectors[1]!)).toEqual(Array.from(Float32Array.from(vec(0.2))));
    // Not through the chat path: an embedding pipeline has nothing to reset.
    expect(scripted.calls).not.toContain("resetChat");
  });

  it.each([
    ["a vector of another length", () => response([vec(0.1, 383)])],
    ["a value that is not finite", () => response([[...vec(0.1, 383), Number.NaN]])],
    ["no vector for an input", () => response([])],
    [
      "an index out of range",
      () => ({
        ...response([vec(0.1)]),
        data: [{ object: "embedding" as const, index: 3, embedding: vec(0.1) }],
      }),
    ],
  ])("refuses WebLLM's answer with %s (engine_error, nothing sent)", async (_, answer) => {
    const { engine } = await loaded(new ScriptedEmbedder(answer));
    const err = await engine.embed({ texts: ["only"], dimensions: 384 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe("engine_error");
  });

  it("a chat model does not embed", async () => {
    const chat = DEFAULT_MODELS.find((r) => r.model_id === "Qwen2.5-0.5B-Instruct-q4f32_1-MLC")!;
    const scripted = new ScriptedEmbedder(() => response([vec(0.1)]));
    const { engine } = await loaded(scripted, chat);
    const err = await engine.embed({ texts: ["x"], dimensions: 384 }).catch((e: unknown) => e);
    expect((err as EngineError).code).toBe("engine_error");
    expect(scripted.requests).toEqual([]);
  });

  it("WebLLM dropping the model is device_lost (the tab reloads it)", async () => {
    const scripted = new ScriptedEmbedder(() => {
      throw new Error("ModelNotLoadedError: Model not loaded before trying to complete request");
    });
    const { engine } = await loaded(scripted);
    const err = await engine.embed({ texts: ["x"], dimensions: 384 }).catch((e: unknown) => e);
    expect((err as EngineError).code).toBe("device_lost");
  });
});
