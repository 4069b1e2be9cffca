import type { ModelRecord } from "../../shared/models/catalog.js";
import type { FinishReason, JobInput, Sampling, Usage } from "../../shared/protocol/job.js";
import {
  EngineError,
  type ChatRequest,
  type CompletionRequest,
  type EngineStats,
  type GenerationResult,
  type InferenceEngine,
  type OnDelta,
  type OnProgress,
} from "../../web/engine/inference-engine.js";

/**
 * A deterministic InferenceEngine for tests (model weights cannot be downloaded here). It "loads"
 * any catalog model, and answers with a fixed transform of the input, one word per token:
 *   chat:       "You said: <last user message>"
 *   completion: "Continuing: <prompt>"
 * Tokens are whitespace-separated words (its own tokenizer); `max_tokens` and `stop` are honoured
 * like a real engine (finish "length" / "stop"); tokens are produced with a short await between
 * them so streaming, coalescing and cancellation are exercised for real. With `continueFrom`
 * (failover) it replays the same answer but sends only the text after what was delivered, and its
 * usage covers the whole answer, as the protocol asks.
 */

export function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

export function answerText(input: JobInput): string {
  if (input.kind === "completion") return `Continuing: ${input.prompt}`;
  const lastUser = [...input.messages].reverse().find((m) => m.role === "user");
  return `You said: ${lastUser?.content ?? ""}`;
}

function promptTokens(input: JobInput): number {
  return input.kind === "completion"
    ? words(input.prompt).length
    : input.messages.reduce((n, m) => n + words(m.content).length, 0);
}

/** What the engine will produce for an input, computed without running it (for assertions). */
export function expectedOutput(
  input: JobInput,
  sampling: Sampling,
): { text: string; finishReason: FinishReason; usage: Usage } {
  const all = words(answerText(input));
  let text = "";
  let generated = 0;
  let finishReason: FinishReason = "stop";
  for (const [i, w] of all.entries()) {
    if (generated === sampling.max_tokens) {
      finishReason = "length";
      break;
    }
    generated++;
    const next = text + (i === 0 ? w : ` ${w}`);
    const cut = firstStop(next, sampling.stop ?? []);
    if (cut !== -1) {
      text = next.slice(0, cut);
      break;
    }
    text = next;
  }
  const prompt = promptTokens(input);
  return {
    text,
    finishReason,
    usage: {
      prompt_tokens: prompt,
      completion_tokens: generated,
      total_tokens: prompt + generated,
    },
  };
}

function firstStop(text: string, stops: string[]): number {
  let cut = -1;
  for (const s of stops) {
    const i = s ? text.indexOf(s) : -1;
    if (i !== -1 && (cut === -1 || i < cut)) cut = i;
  }
  return cut;
}

export class DeterministicEngine implements InferenceEngine {
  private loaded: string | null = null;
  private abortRequested = false;
  private generating = false;
  private generations = 0;
  private lastTps: number | null = null;

  /** Pause before each token, ms (subclasses may change it between generations). */
  constructor(protected tokenDelayMs = 15) {}

  async load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    for (const [progress, text] of [
      [0, "Start to fetch params"],
      [0.5, `Loading ${model.model_id} (deterministic test engine)`],
      [1, "Finish loading on WebGPU"],
    ] as const) {
      onProgress({ progress, text });
      await this.tick();
    }
    this.loaded = model.model_id;
  }

  chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.generate(
      { kind: "chat", messages: request.messages },
      request.sampling,
      onDelta,
      request.continueFrom ?? "",
    );
  }

  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.generate(
      { kind: "completion", prompt: request.prompt },
      request.sampling,
      onDelta,
      request.continueFrom ?? "",
    );
  }

  async abort(): Promise<void> {
    if (this.generating) this.abortRequested = true;
  }

  async unload(): Promise<void> {
    this.loaded = null;
  }

  async stats(): Promise<EngineStats> {
    return {
      loadedModel: this.loaded,
      generations: this.generations,
      lastDecodeTokensPerSecond: this.lastTps,
    };
  }

  private tick(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.tokenDelayMs));
  }

  private async generate(
    input: JobInput,
    sampling: Sampling,
    onDelta: OnDelta,
    continueFrom: string,
  ): Promise<GenerationResult> {
    if (!this.loaded) throw new EngineError("not_loaded", "no model is loaded");
    if (this.generating) throw new EngineError("engine_error", "a generation is already running");
    this.generating = true;
    this.abortRequested = false;
    const expected = expectedOutput(input, sampling);
    const started = performance.now();
    let sent = "";
    let generated = 0;
    let finishReason = expected.finishReason;
    try {
      // Replay the expected text token by token, as a real decoder would produce it.
      for (const w of words(answerText(input)).slice(0, expected.usage.completion_tokens)) {
        const next = sent ? `${sent} ${w}` : w;
        // Tokens already delivered by another tab are prefilled, not decoded again.
        const delivered = next.length <= continueFrom.length;
        if (!delivered) await this.tick();
        if (this.abortRequested) {
          finishReason = "abort";
          break;
        }
        generated++;
        const from = Math.max(sent.length, continueFrom.length);
        const piece = expected.text.slice(from, Math.min(next.length, expected.text.length));
        if (piece) onDelta(piece);
        sent = next;
      }
    } finally {
      this.generating = false;
    }
    const seconds = (performance.now() - started) / 1000;
    this.generations++;
    this.lastTps = seconds > 0 ? generated / seconds : null;
    const prompt = expected.usage.prompt_tokens;
    return {
      finishReason,
      usage: {
        prompt_tokens: prompt,
        completion_tokens: generated,
        total_tokens: prompt + generated,
      },
      ...(this.lastTps !== null ? { decodeTokensPerSecond: this.lastTps } : {}),
    };
  }
}
