import { describe, expect, it } from "vitest";
import type {
  ChatCompletionChunk,
  ChatCompletionRequestStreaming,
  Completion,
  CompletionCreateParamsStreaming,
  LogitProcessor,
} from "@mlc-ai/web-llm";
import { TINY_RECORD, loadedEngineOver } from "../../test/support/webllm-fakes.js";
import type { WebLLMEngineApi } from "./webllm-api.js";

/**
 * A streamed JSON answer that fails over continues under its grammar (webllm-engine.ts
 * `resumeGrammar`), up to WebLLM's boundary: a fake engine runs WebLLM's decode loop in its order
 * (grammar bitmask → the registered LogitProcessor on the CPU → sample → processSampledToken → the
 * grammar matcher accepts the token or WebLLM throws "Grammar matcher rejected the newly sampled
 * token.") over a tiny vocabulary. Its model always wants "x" — without the grammar it breaks the
 * JSON — and its grammar allows exactly {"a": true}.
 */

const record = TINY_RECORD;

const VOCAB = ["<eos>", '{"', "a", '":', " true", "}", "[", "x"];
const ANSWER = [1, 2, 3, 4, 5, 0];
const X = 7;
/** Greedy longest match over the vocabulary: the fake's tokenizer. */
function encode(text: string): number[] {
  const ids: number[] = [];
  for (let at = 0; at < text.length;) {
    let best = -1;
    for (let id = 1; id < VOCAB.length; id++)
      if (text.startsWith(VOCAB[id]!, at) && (best < 0 || VOCAB[id]!.length > VOCAB[best]!.length))
        best = id;
    if (best < 0) throw new Error(`no token for ${JSON.stringify(text.slice(at))}`);
    ids.push(best);
    at += VOCAB[best]!.length;
  }
  return ids;
}

const usageOf = (steps: number) => ({
  prompt_tokens: 9,
  completion_tokens: steps,
  total_tokens: 9 + steps,
  extra: {
    e2e_latency_s: 0.5,
    prefill_tokens_per_s: 100,
    decode_tokens_per_s: 10,
    time_to_first_token_s: 0.1,
    time_per_output_token_s: 0.1,
  },
});

class GrammarWebLLM {
  processor: LogitProcessor | undefined;
  chatRequests: ChatCompletionRequestStreaming[] = [];
  completionRequests: CompletionCreateParamsStreaming[] = [];

  api(): WebLLMEngineApi {
    const self = this;
    async function* decode<C>(
      maxTokens: number,
      grammar: boolean,
      chunk: (t: string) => C,
      usage: (steps: number) => C,
    ): AsyncGenerator<C> {
      let steps = 0;
      for (; steps < maxTokens;) {
        let logits: Float32Array = new Float32Array(VOCAB.length);
        logits[X] = 5;
        const allowed = ANSWER[steps] ?? 0;
        if (grammar)
          for (let i = 0; i < logits.length; i++) if (i !== allowed) logits[i] = -Infinity;
        if (self.processor) logits = self.processor.processLogits(logits);
        let token = 0;
        for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[token]!) token = i;
        self.processor?.processSampledToken(token);
        if (grammar && token !== allowed)
          throw new Error("Grammar matcher rejected the newly sampled token.");
        steps++;
        if (token === 0) break;
        yield chunk(VOCAB[token]!);
      }
      yield usage(steps);
    }
    return {
      chat: {
        completions: {
          async create(request: ChatCompletionRequestStreaming) {
            self.chatRequests.push(request);
            return decode<ChatCompletionChunk>(
              request.max_tokens ?? 0,
              request.response_format?.type === "json_object",
              (content) => ({
                id: "c",
                object: "chat.completion.chunk",
                created: 1,
                model: record.model_id,
                choices: [{ index: 0, delta: { content }, finish_reason: null }],
              }),
              (steps) => ({
                id: "c",
                object: "chat.completion.chunk",
                created: 1,
                model: record.model_id,
                choices: [],
                usage: usageOf(steps),
              }),
            );
          },
        },
      },
      completions: {
        async create(request: CompletionCreateParamsStreaming) {
          self.completionRequests.push(request);
          const piece = (text: string): Completion => ({
            id: "t",
            object: "text_completion",
            created: 1,
            model: record.model_id,
            choices: [{ index: 0, text, finish_reason: null, logprobs: null }],
          });
          return decode<Completion>(request.max_tokens ?? 0, false, piece, (steps) => ({
            ...piece(""),
            choices: [],
            usage: usageOf(steps),
          }));
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

async function continued(
  partial: string,
  { tokenizer = true, answerMaxTokens = 16, tokenize = encode } = {},
) {
  const fake = new GrammarWebLLM();
  const engine = await loadedEngineOver(fake, tokenizer ? tokenize : null);
  const deltas: string[] = [];
  const result = await engine.chat(
    {
      messages: [{ role: "user", content: "give me a" }],
      sampling: {
        max_tokens: 1,
        constraint: { kind: "json", schema: { type: "object" } },
      },
      continueFrom: partial,
      answerMaxTokens,
    },
    (t) => deltas.push(t),
  );
  return { fake, result, sent: deltas.join("") };
}

describe("a constrained answer that fails over resumes its grammar", () => {
  it("feeds the delivered tokens through the grammar, then writes only the rest, valid", async () => {
    const { fake, result, sent } = await continued('{"a');
    // The chat API under the grammar, not the raw completion API without it.
    expect(fake.completionRequests).toHaveLength(0);
    expect(fake.chatRequests[0]).toMatchObject({
      response_format: { type: "json_object" },
      // The 2 forced tokens plus what the answer's budget leaves after them (16 − 2).
      max_tokens: 2 + 14,
    });
    // The model wanted "x" at every step; the grammar, standing after '{"a', allowed only this.
    expect(sent).toBe('": true}');
    expect(JSON.parse('{"a' + sent)).toEqual({ a: true });
    // 6 decode steps (2 forced, 3 written, the stop token): the forced ones are the delivered text's.
    expect(result).toMatchObject({ continuedTokens: 2, usage: { completion_tokens: 4 } });
  });

  it("continues unconstrained when the grammar refuses the delivered text, as before", async () => {
    const { fake, result, sent } = await continued("[x");
    expect(fake.chatRequests).toHaveLength(1);
    expect(fake.completionRequests).toHaveLength(1);
    // Nothing of the refused attempt reached the client; the raw path wrote its budget of "x".
    expect(sent).toBe("x".repeat(14));
    expect(result.continuedTokens).toBe(2);
  });

  it("continues unconstrained when the forced tokens do not decode to the delivered text", async () => {
    // A tokenizer that normalises what it encodes ("b" becomes "a"): the grammar takes the forced
    // tokens, but they replay '{"a', not the '{"b' the client has. Nothing of it is sent.
    const { fake, sent } = await continued('{"b', {
      tokenize: (text: string) => encode(text.replace("b", "a")),
    });
    expect(fake.chatRequests).toHaveLength(1);
    expect(fake.completionRequests).toHaveLength(1);
    expect(sent).toBe("x".repeat(14));
  });

  it("continues unconstrained when the tokenizer is out of reach (nothing to force)", async () => {
    const { fake, sent } = await continued('{"a', { tokenizer: false });
    expect(fake.chatRequests).toHaveLength(0);
    expect(fake.completionRequests[0]?.max_tokens).toBe(1);
    expect(sent).toBe("x");
  });
});
