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

/**
 * What the teacher forcer needs to re-compute a claimed logprob entry as WebLLM reported it: the
 * loaded pipeline's sampling defaults (its `config`, from the model's mlc-chat-config.json and
 * any overrides — what WebLLM falls back on when a request gives no temperature or penalty) and a
 * one-token decoder (WebLLM names an entry's token by `tokenizer.decode([id])`). Private fields of
 * MLCEngine 0.2.79–0.2.86, checked at run time: null when they moved, and the audit then reports
 * nothing to compare rather than something wrong.
 */
export interface ReportingParts {
  decode(id: number): string;
  temperature: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
}

export function engineReporting(
  engine: WebLLMEngineApi,
  model: ModelRecord,
): ReportingParts | null {
  const pipelines = (engine as unknown as { loadedModelIdToPipeline?: Map<string, unknown> })
    .loadedModelIdToPipeline;
  const pipeline = pipelines?.get(model.model_id) as
    | {
        tokenizer?: { decode?: (ids: Int32Array) => string };
        config?: {
          temperature?: number;
          presence_penalty?: number;
          frequency_penalty?: number;
          repetition_penalty?: number;
        };
      }
    | undefined;
  const tokenizer = pipeline?.tokenizer;
  const config = pipeline?.config;
  if (!tokenizer || typeof tokenizer.decode !== "function" || !config) return null;
  if (typeof config.temperature !== "number") return null;
  return {
    decode: (id) => tokenizer.decode!.call(tokenizer, new Int32Array([id])),
    temperature: config.temperature,
    presencePenalty: config.presence_penalty ?? 0,
    frequencyPenalty: config.frequency_penalty ?? 0,
    repetitionPenalty: config.repetition_penalty ?? 1,
  };
}

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
