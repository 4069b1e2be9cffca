import type { LogitProcessor } from "@mlc-ai/web-llm";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { EngineError } from "../../web/engine/inference-engine.js";
import type { ConvTemplate } from "../../web/engine-worker/conv-template.js";
import type { WebLLMEngineApi } from "../../web/engine-worker/webllm-api.js";
import { WebLLMEngine } from "../../web/engine-worker/webllm-engine.js";

/**
 * What the WebLLM adapter's unit tests (web/engine-worker/*.test.ts) share when they run the
 * product's WebLLMEngine over a fake WebLLM: the model record they load (nothing is fetched), a
 * chat template without a system message, and the engine wired to the fake.
 */

export const TINY_RECORD: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

/** "U: …\nA: …", no system message; stop token 0. */
export const PLAIN_CONV = {
  system_template: "{system_message}",
  system_message: "",
  roles: { user: "U", assistant: "A" },
  seps: ["\n"],
  stop_str: [],
  stop_token_ids: [0],
} as unknown as ConvTemplate;

/** A fake WebLLM: its API, and where the adapter's registered logit processor is handed to it. */
export interface FakeWebLLM {
  processor?: LogitProcessor | undefined;
  api(): WebLLMEngineApi;
}

/**
 * The product's engine over `fake`, loaded with TINY_RECORD: the teacher forcer it registers for
 * the model reaches the fake, and `tokenize` is the model's tokenizer as WebLLM would hold it
 * (null: out of reach, as when WebLLM moves it).
 */
export async function loadedEngineOver(
  fake: FakeWebLLM,
  tokenize: ((text: string) => number[]) | null,
  conv: ConvTemplate = PLAIN_CONV,
): Promise<WebLLMEngine> {
  const engine = new WebLLMEngine(
    async (_id, config) => {
      fake.processor = config.logitProcessorRegistry?.get(TINY_RECORD.model_id);
      return fake.api();
    },
    async () => conv,
    undefined,
    async () => {
      if (!tokenize) throw new EngineError("engine_error", "WebLLM's tokenizer is not reachable");
      return tokenize;
    },
  );
  await engine.load(TINY_RECORD, () => {});
  return engine;
}
