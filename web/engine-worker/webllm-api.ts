import {
  CreateMLCEngine,
  deleteModelAllInfoInCache,
  hasModelInCache,
  type AppConfig,
  type ChatCompletionChunk,
  type ChatCompletionRequestStreaming,
  type Completion,
  type CompletionCreateParamsStreaming,
  type CreateEmbeddingResponse,
  type EmbeddingCreateParams,
  type MLCEngineConfig,
  type MLCEngineInterface,
} from "@mlc-ai/web-llm";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { EngineError } from "../engine/inference-engine.js";
import { chooseCacheBackend, type CacheBackend, type CacheChoice } from "./cache-backend.js";
import { modelBaseUrl, type ConvTemplate } from "./conv-template.js";

/*
 * What of WebLLM the engine adapter (webllm-engine.ts) reaches, each part injectable so units can
 * drive the adapter without a GPU: the engine itself, the loaded model's tokenizer, the model's
 * conversation template and the model cache.
 */

/**
 * WebLLM's `Chat`/`Completions` classes have private fields, so the adapter names the structural
 * subset it uses; `assertSubset` below proves at compile time that the real `MLCEngineInterface`
 * satisfies it, and the unit test builds an object against it.
 */
export interface WebLLMEngineApi {
  chat: {
    completions: {
      create(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
    };
  };
  completions: {
    create(request: CompletionCreateParamsStreaming): Promise<AsyncIterable<Completion>>;
  };
  embeddings: {
    create(request: EmbeddingCreateParams): Promise<CreateEmbeddingResponse>;
  };
  interruptGenerate: MLCEngineInterface["interruptGenerate"];
  unload: MLCEngineInterface["unload"];
  resetChat: MLCEngineInterface["resetChat"];
}

// Compile-time proof that the real engine fits the subset (no runtime effect).
const assertSubset = (engine: MLCEngineInterface): WebLLMEngineApi => engine;
void assertSubset;

export type WebLLMEngineFactory = (
  modelId: string,
  config: MLCEngineConfig,
) => Promise<WebLLMEngineApi>;

export const defaultFactory: WebLLMEngineFactory = (modelId, config) =>
  CreateMLCEngine(modelId, config);

/**
 * The model's own tokenizer, to turn a claimed answer into the token ids the teacher forcer feeds.
 * WebLLM does not export its tokenizer; `engineTokenizer` reaches the one the loaded pipeline
 * holds (a private field of MLCEngine 0.2.86, checked at run time, so a WebLLM upgrade that moves
 * it fails audits with a clear error instead of scoring wrong ids).
 */
export type TokenizerSource = (
  engine: WebLLMEngineApi,
  model: ModelRecord,
) => Promise<(text: string) => number[]>;

export const engineTokenizer: TokenizerSource = async (engine, model) => {
  const pipelines = (engine as unknown as { loadedModelIdToPipeline?: Map<string, unknown> })
    .loadedModelIdToPipeline;
  const pipeline = pipelines?.get(model.model_id) as
    { tokenizer?: { encode?: (text: string) => Int32Array } } | undefined;
  const tokenizer = pipeline?.tokenizer;
  if (!tokenizer || typeof tokenizer.encode !== "function") {
    throw new EngineError("engine_error", "WebLLM's tokenizer is not reachable");
  }
  return (text) => Array.from(tokenizer.encode!.call(tokenizer, text));
};

/** Reads a model's conversation template (only needed to continue another tab's answer). */
export type ConvTemplateSource = (model: ModelRecord) => Promise<ConvTemplate>;

/** The model's mlc-chat-config.json, from where WebLLM itself loads it (usually an HTTP cache hit). */
export const fetchConvTemplate: ConvTemplateSource = async (model) => {
  const res = await fetch(new URL("mlc-chat-config.json", modelBaseUrl(model.model)));
  if (!res.ok) throw new Error(`mlc-chat-config.json answered HTTP ${res.status}`);
  const config = (await res.json()) as { conv_template?: ConvTemplate };
  if (!config.conv_template) throw new Error("mlc-chat-config.json has no conv_template");
  return config.conv_template;
};

/**
 * WebLLM's app config for one catalog record and cache backend. `cacheBackend` is how WebLLM
 * ≥ 0.2.80 names it; `useIndexedDBCache` is the same choice for 0.2.79 (the version the real-engine
 * test runs, see shared/fixtures), so both are set.
 */
export function appConfigFor(model: ModelRecord, backend: CacheBackend): AppConfig {
  return Object.assign(
    { model_list: [model], cacheBackend: backend },
    { useIndexedDBCache: backend === "indexeddb" },
  );
}

/** WebLLM's cache helpers for one model (injected so units can drive them). */
export interface ModelCacheOps {
  /** Which storage this context allows (web/engine-worker/cache-backend.ts). */
  choose(): Promise<CacheChoice>;
  has(model: ModelRecord, backend: CacheBackend): Promise<boolean>;
  clear(model: ModelRecord, backend: CacheBackend): Promise<void>;
}

export const webllmCache: ModelCacheOps = {
  choose: () => chooseCacheBackend(),
  has: (m, backend) => hasModelInCache(m.model_id, appConfigFor(m, backend)),
  clear: (m, backend) => deleteModelAllInfoInCache(m.model_id, appConfigFor(m, backend)),
};
