import { describe, expect, it } from "vitest";
import type {
  ChatCompletionChunk,
  ChatCompletionRequestStreaming,
  Completion,
  CompletionCreateParamsStreaming,
  LogitProcessor,
  MLCEngineConfig,
} from "@mlc-ai/web-llm";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { ConvTemplate } from "./conv-template.js";
import { TeacherForcer } from "./teacher-forcer.js";
import type { WebLLMEngineApi } from "./webllm-api.js";
import { WebLLMEngine } from "./webllm-engine.js";

/**
 * The scoring path of the WebLLM adapter up to WebLLM's boundary: a fake engine that runs WebLLM's
 * decode loop as 0.2.86 does around a registered LogitProcessor (logits → processLogits on the
 * CPU → sample → processSampledToken, ending at max_tokens or a stop token id) over a tiny vocabulary
 * whose logits the test fixes, so the recorded log-probs can be checked by hand.
 */

const record: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

// Vocabulary: 0 "<eos>", 1 "Hello", 2 " world", 3 " spam", 4 "!"
const VOCAB = ["<eos>", "Hello", " world", " spam", "!"];
const encode = (text: string) =>
  (text.match(/\s?[A-Za-z]+|!/g) ?? []).map((piece) => VOCAB.indexOf(piece));

/** The model "wants" Hello, world, !, <eos>: its own token gets logit 5, the others 0. */
const WANTS = [1, 2, 4, 0];
function logitsAt(step: number): Float32Array {
  const logits = new Float32Array(VOCAB.length);
  logits[WANTS[Math.min(step, WANTS.length - 1)]!] = 5;
  return logits;
}
const logSoftmaxOf = (step: number, id: number) => {
  const l = logitsAt(step);
  const lse = Math.log(l.reduce((s, v) => s + Math.exp(v), 0));
  return l[id]! - lse;
};

class FakeWebLLM {
  processor: LogitProcessor | undefined;
  chatRequests: ChatCompletionRequestStreaming[] = [];
  completionRequests: CompletionCreateParamsStreaming[] = [];
  sampled: number[] = [];

  api(): WebLLMEngineApi {
    const self = this;
    // With a response_format, a grammar that never allows " spam": WebLLM masks the logits with
    // the grammar before the processor sees them, and its matcher refuses a token it masked.
    async function* decode<C>(
      maxTokens: number,
      chunk: (t: string) => C,
      grammar = false,
      from = 0,
    ): AsyncGenerator<C> {
      for (let step = from; step < from + maxTokens; step++) {
        let logits = logitsAt(step);
        if (grammar) logits[3] = -Infinity;
        if (self.processor) logits = self.processor.processLogits(logits);
        let token = 0;
        for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[token]!) token = i;
        if (grammar && token === 3) throw new Error("Grammar matcher rejected the token 3");
        self.processor?.processSampledToken(token);
        self.sampled.push(token);
        if (token === 0) break;
        yield chunk(VOCAB[token]!);
      }
    }
    return {
      chat: {
        completions: {
          async create(request: ChatCompletionRequestStreaming) {
            self.chatRequests.push(request);
            return decode<ChatCompletionChunk>(
              request.max_tokens ?? 0,
              (content) => ({
                id: "c",
                object: "chat.completion.chunk",
                created: 1,
                model: record.model_id,
                choices: [{ index: 0, delta: { content }, finish_reason: null }],
              }),
              request.response_format !== undefined,
            );
          },
        },
      },
      completions: {
        async create(request: CompletionCreateParamsStreaming) {
          self.completionRequests.push(request);
          // A prompt that already holds the start of the reply (after the template's assistant
          // header) has the model go on from there.
          const reply = String(request.prompt).split(ASSISTANT).at(-1)!;
          const from = String(request.prompt).includes(ASSISTANT) ? encode(reply).length : 0;
          return decode<Completion>(
            request.max_tokens ?? 0,
            (text) => ({
              id: "t",
              object: "text_completion",
              created: 1,
              model: record.model_id,
              choices: [{ index: 0, text, finish_reason: null, logprobs: null }],
            }),
            false,
            from,
          );
        },
      },
      interruptGenerate: () => {},
      unload: async () => {},
      resetChat: async () => {
        self.processor?.resetState();
      },
      embeddings: { create: () => Promise.reject(new Error("not a test of embeddings")) },
    };
  }
}

const ASSISTANT = "<assistant>";
const conv: ConvTemplate = {
  system_template: "{system_message}",
  system_message: "",
  roles: { user: "<user>", assistant: ASSISTANT },
  seps: ["\n"],
  role_content_sep: " ",
  role_empty_sep: " ",
  stop_str: [],
  stop_token_ids: [0],
  render_empty_system_message: false,
};

async function loaded() {
  const fake = new FakeWebLLM();
  const configs: MLCEngineConfig[] = [];
  const engine = new WebLLMEngine(
    async (_id, config) => {
      configs.push(config);
      fake.processor = config.logitProcessorRegistry?.get(record.model_id);
      return fake.api();
    },
    async () => conv,
    undefined,
    async () => encode,
  );
  await engine.load(record, () => {});
  return { engine, fake, configs };
}

const base = {
  input: { kind: "chat" as const, messages: [{ role: "user" as const, content: "hi" }] },
  sampling: { max_tokens: 16, temperature: 0.7 },
  seed: 7,
  maxTokens: 64,
};

describe("WebLLMEngine.score (teacher forcing through a LogitProcessor)", () => {
  it("registers one processor for the loaded model id when it creates the engine", async () => {
    const { configs } = await loaded();
    expect(configs[0]?.logitProcessorRegistry?.get(record.model_id)).toBeInstanceOf(TeacherForcer);
  });

  it("records log-softmax of each claimed token and of stopping after it", async () => {
    const { engine, fake } = await loaded();
    const result = await engine.score({ ...base, answer: "Hello world!", scoreStop: true });
    expect(result.tokenLogprobs).toHaveLength(3);
    [1, 2, 4].forEach((id, step) =>
      expect(result.tokenLogprobs[step]).toBeCloseTo(logSoftmaxOf(step, id), 6),
    );
    expect(result.stopLogprob).toBeCloseTo(logSoftmaxOf(3, 0), 6);
    // The claimed tokens, then the forced stop, were what WebLLM committed; one step per token.
    expect(fake.sampled).toEqual([1, 2, 4, 0]);
    expect(fake.chatRequests[0]).toMatchObject({ max_tokens: 4, temperature: 0, seed: 7 });
    expect(fake.chatRequests[0]?.response_format).toBeUndefined();
  });

  it("scores no stop after an answer cut to maxTokens (an honest model would go on there)", async () => {
    const { engine, fake } = await loaded();
    const result = await engine.score({
      ...base,
      answer: "Hello world!",
      scoreStop: true,
      maxTokens: 2,
    });
    expect(result.tokenLogprobs).toHaveLength(2);
    expect(result.stopLogprob).toBeNull();
    // Two forced steps and no forced stop: the answer's third token is neither fed nor judged.
    expect(fake.sampled).toEqual([1, 2]);
  });

  it("counts the whole answer's tokens by the model's tokenizer, however many it scores", async () => {
    const { engine } = await loaded();
    const whole = await engine.score({ ...base, answer: "Hello world!", scoreStop: true });
    expect(whole.answerTokens).toBe(3);
    // Cut to two scored tokens, the count is still the whole answer's (the coordinator compares
    // it with the audited tab's completion tokens); no stop token is counted.
    const cut = await engine.score({
      ...base,
      answer: "Hello world!",
      scoreStop: true,
      maxTokens: 2,
    });
    expect(cut.tokenLogprobs).toHaveLength(2);
    expect(cut.answerTokens).toBe(3);
    const empty = await engine.score({ ...base, answer: "", scoreStop: false });
    expect(empty).toEqual({ tokenLogprobs: [], stopLogprob: null, answerTokens: 0 });
  });

  it("forces a foreign token the model finds unlikely, and scores it low", async () => {
    const { engine, fake } = await loaded();
    const result = await engine.score({ ...base, answer: "Hello spam spam", scoreStop: false });
    expect(fake.sampled).toEqual([1, 3, 3]);
    expect(result.tokenLogprobs[0]).toBeGreaterThan(-0.1);
    expect(result.tokenLogprobs[1]).toBeCloseTo(logSoftmaxOf(1, 3), 6);
    expect(result.tokenLogprobs[1]).toBeLessThan(-4);
    expect(result.stopLogprob).toBeNull();
  });

  it("scores under the job's logit_bias: tokens the client forced are not implausible", async () => {
    // A client's logit_bias of +100 on " spam" makes an honest tab write " spam spam" (WebLLM adds
    // the bias after the processor: the serving tab sampled from biased logits). Scored unbiased,
    // those tokens read as another model's and the honest tab as a liar.
    const { engine, fake } = await loaded();
    const sampling = { ...base.sampling, logit_bias: { "3": 100 } };
    const result = await engine.score({
      ...base,
      sampling,
      answer: " spam spam",
      scoreStop: false,
    });
    expect(fake.sampled).toEqual([3, 3]);
    const biased = (step: number) => {
      const l = logitsAt(step);
      l[3] = l[3]! + 100;
      return l[3]! - Math.log(l.reduce((s, v) => s + Math.exp(v), 0));
    };
    expect(result.tokenLogprobs).toHaveLength(2);
    result.tokenLogprobs.forEach((lp, step) => {
      expect(lp).toBeCloseTo(biased(step), 6);
      expect(lp).toBeGreaterThan(-0.1);
    });
    // The bias is not also handed to WebLLM (it would add it again after the forcer).
    expect(fake.chatRequests[0]?.logit_bias).toBeUndefined();
    // The next audit, without a bias, scores the same tokens as the model alone rates them.
    const plain = await engine.score({ ...base, answer: " spam spam", scoreStop: false });
    expect(plain.tokenLogprobs[0]).toBeCloseTo(logSoftmaxOf(0, 3), 6);
    expect(plain.tokenLogprobs[0]).toBeLessThan(-4);
  });

  it("scores a constrained answer under its grammar, and without it when the grammar refuses the tokens", async () => {
    const { engine, fake } = await loaded();
    const schema = { type: "object" };
    const sampling = { ...base.sampling, constraint: { kind: "json" as const, schema } };
    const result = await engine.score({
      ...base,
      sampling,
      answer: "Hello world!",
      scoreStop: false,
    });
    // Each token scored among the tokens the grammar allowed (" spam" masked), as the serving tab
    // sampled: higher than the model alone rates it.
    const masked = (step: number, id: number) => {
      const l = logitsAt(step);
      l[3] = -Infinity;
      return l[id]! - Math.log(l.reduce((s, v) => s + Math.exp(v), 0));
    };
    [1, 2, 4].forEach((id, step) => {
      expect(result.tokenLogprobs[step]).toBeCloseTo(masked(step, id), 6);
      expect(result.tokenLogprobs[step]).toBeGreaterThan(logSoftmaxOf(step, id));
    });
    expect(fake.chatRequests[0]?.response_format).toEqual({
      type: "json_object",
      schema: JSON.stringify(schema),
    });
    // Text the grammar refuses (a liar's, or a split the serving tab's grammar did not make) is
    // scored as before, without the grammar: " spam" still reads as another model's token.
    const refused = await engine.score({
      ...base,
      sampling,
      answer: "Hello spam",
      scoreStop: false,
    });
    expect(fake.chatRequests.slice(1).map((r) => r.response_format !== undefined)).toEqual([
      true,
      false,
    ]);
    expect(refused.tokenLogprobs).toHaveLength(2);
    expect(refused.tokenLogprobs[1]).toBeCloseTo(logSoftmaxOf(1, 3), 6);
    expect(refused.tokenLogprobs[1]).toBeLessThan(-4);
  });

  it("scores a window of a long answer after its prefix, read as the start of the reply", async () => {
    const { engine, fake } = await loaded();
    const result = await engine.score({
      ...base,
      prefix: "Hello",
      answer: " world!",
      scoreStop: true,
    });
    // The prefix is prefilled as the reply so far (the raw completion API, the chat rendered with
    // the model's template), and the window's tokens are scored where they stand in the answer.
    expect(fake.completionRequests[0]?.prompt).toBe("<user> hi\n<assistant> Hello");
    expect(fake.chatRequests).toHaveLength(0);
    expect(result.tokenLogprobs).toHaveLength(2);
    [2, 4].forEach((id, i) =>
      expect(result.tokenLogprobs[i]).toBeCloseTo(logSoftmaxOf(i + 1, id), 6),
    );
    expect(result.stopLogprob).toBeCloseTo(logSoftmaxOf(3, 0), 6);
    expect(fake.sampled).toEqual([2, 4, 0]);
    // The count is of the whole answer sent (prefix and window): the coordinator compares it with
    // the audited tab's claim.
    expect(result.answerTokens).toBe(3);
  });

  it("scores a plain completion through the raw completion API and caps the tokens fed", async () => {
    const { engine, fake } = await loaded();
    const result = await engine.score({
      ...base,
      input: { kind: "completion", prompt: "Say hello" },
      answer: "Hello world!",
      scoreStop: false,
      maxTokens: 2,
    });
    expect(result.tokenLogprobs).toHaveLength(2);
    expect(fake.completionRequests[0]).toMatchObject({ prompt: "Say hello", max_tokens: 2 });
  });

  it("leaves ordinary generations untouched once scoring is over", async () => {
    const { engine, fake } = await loaded();
    await engine.score({ ...base, answer: "Hello spam", scoreStop: false });
    fake.sampled = [];
    const deltas: string[] = [];
    await engine
      .chat({ messages: base.input.messages, sampling: { max_tokens: 8 } }, (t) => deltas.push(t))
      .catch(() => {}); // the fake sends no usage chunk; only the sampled tokens matter here
    expect(fake.sampled).toEqual([1, 2, 4, 0]);
    expect(deltas.join("")).toBe("Hello world!");
  });

  it("fails with a typed error when WebLLM did not commit the claimed tokens", async () => {
    const forcer = new TeacherForcer();
    forcer.arm([1, 2], []);
    forcer.processLogits(logitsAt(0));
    forcer.processSampledToken(3);
    expect(forcer.disarm().diverged).toBe(true);
  });
});
