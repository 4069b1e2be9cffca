/// <reference lib="webworker" />
/**
 * The real-engine test's Worker: the product's own engine code — WebLLMEngine
 * (web/engine-worker/webllm-engine.ts) behind the product's comlink host — over WebLLM 0.2.79, the
 * one WebLLM that runs the offline fixture library (../shared/fixtures/webllm-qwen2-0.5b-q4f32_1).
 * The test bundle aliases `@mlc-ai/web-llm` to the `web-llm-0279` package (build-page.ts), so
 * webllm-engine.ts's own imports (CreateMLCEngine, the cache helpers) are 0.2.79's too; the product
 * build keeps the newer WebLLM.
 *
 * Two test-only differences, both at the factory WebLLMEngine already takes:
 * - 0.2.79's `usage.completion_tokens` leaves out the token sampled after prefill (0.2.80+ counts
 *   it); the stream is passed through with that one token added back, so the coordinator sees what
 *   the shipped WebLLM would report.
 * - every streamed token is logged (`tabgrid-real-engine {...}` on the Worker's console), so the
 *   test can count exactly what each tab generated, and when, and each request's `max_tokens`.
 * The wrapper passes the engine's loaded pipelines through (`loadedModelIdToPipeline`), where
 * webllm-engine.ts's `engineTokenizer` reaches the model's tokenizer, as on the MLCEngine itself.
 */
import { CreateMLCEngine } from "@mlc-ai/web-llm";
import { exposeEngine } from "../../web/engine-worker/engine-host.js";
import type { WebLLMEngineApi } from "../../web/engine-worker/webllm-api.js";
import { WebLLMEngine } from "../../web/engine-worker/webllm-engine.js";

const log = (event: Record<string, unknown>) =>
  console.log(`tabgrid-real-engine ${JSON.stringify({ t: Date.now(), ...event })}`);

interface Chunk {
  choices: { delta?: { content?: string | null }; text?: string }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** Pass a WebLLM stream through: log each token, count the first token in the usage. */
async function* observed<C>(
  stream: AsyncIterable<C>,
  kind: string,
  maxTokens: number | null | undefined,
): AsyncIterable<C> {
  let tokens = 0;
  log({ event: "start", kind, maxTokens });
  for await (const chunk of stream) {
    const c = chunk as Chunk;
    // One chunk per token that decodes to text (WebLLM skips a token that completes no
    // character, and ends with an empty chunk carrying the finish reason).
    const text = c.choices[0]?.delta?.content ?? c.choices[0]?.text ?? "";
    if (text) log({ event: "token", n: ++tokens, text });
    if (c.usage && c.usage.prompt_tokens > 0) {
      const usage = {
        ...c.usage,
        completion_tokens: c.usage.completion_tokens + 1,
        total_tokens: c.usage.total_tokens + 1,
      };
      log({ event: "usage", usage, reported: c.usage });
      yield { ...chunk, usage } as C;
      continue;
    }
    yield chunk;
  }
  log({ event: "end", tokens });
}

const factory = async (
  modelId: string,
  config: NonNullable<Parameters<typeof CreateMLCEngine>[1]>,
): Promise<WebLLMEngineApi> => {
  const engine = await CreateMLCEngine(modelId, {
    ...config,
    initProgressCallback: (report) => {
      log({ event: "progress", text: report.text });
      config.initProgressCallback?.(report);
    },
  });
  const api: WebLLMEngineApi = {
    chat: {
      completions: {
        create: async (request) =>
          observed(await engine.chat.completions.create(request), "chat", request.max_tokens),
      },
    },
    completions: {
      create: async (request) =>
        observed(await engine.completions.create(request), "completion", request.max_tokens),
    },
    interruptGenerate: () => engine.interruptGenerate(),
    unload: () => engine.unload(),
    resetChat: (...a) => engine.resetChat(...a),
    embeddings: { create: (request) => engine.embeddings.create(request) },
  };
  Object.defineProperty(api, "loadedModelIdToPipeline", {
    get: () => (engine as unknown as { loadedModelIdToPipeline?: unknown }).loadedModelIdToPipeline,
  });
  return api;
};

const engine = new WebLLMEngine((id, config) => factory(id, config));
// The test also scores claimed answers on it directly (`worker.evaluate`), as a verifier's audit
// does: an audit through the coordinator needs verification on, and its other jobs with it.
(self as unknown as { tabgridEngine: WebLLMEngine }).tabgridEngine = engine;
exposeEngine(engine);
