import type { ModelRecord } from "../../shared/models/catalog.js";
import { createRng } from "../../shared/scheduling/prng.js";
import type { FinishReason, JobInput, Sampling, Usage } from "../../shared/protocol/job.js";
import { SERVED_TOP_LOGPROBS, type TokenLogprob } from "../../shared/protocol/logprobs.js";
import {
  EngineError,
  type ChatRequest,
  type CompletionRequest,
  type EmbedRequest,
  type EmbedResult,
  type EngineStats,
  type GenerationResult,
  type InferenceEngine,
  type OnDelta,
  type OnProgress,
  type ScoreRequest,
  type ScoreResult,
} from "../../web/engine/inference-engine.js";

/**
 * A deterministic InferenceEngine for tests (model weights cannot be downloaded here). It "loads"
 * any catalog model, and answers with a fixed transform of the input, one word per token:
 *   chat:       "You said: <last user message>"
 *   completion: "Continuing: <prompt>"
 * Tokens are whitespace-separated words (its own tokenizer); `max_tokens` and `stop` are honoured
 * like a real engine (finish "length" / "stop"); tokens are produced with a short await between
 * them so streaming, coalescing and cancellation are exercised for real. With `continueFrom`
 * (failover) it continues the same answer after the delivered text, as WebLLM does and the
 * protocol asks (`job.assign`): the tokens already delivered are prefilled, not generated,
 * `max_tokens` counts only the tokens it generates, and so does its usage; it reports how many
 * tokens the delivered text was as `continuedTokens`. Given the whole answer's `answerMaxTokens`
 * (protocol 8) it writes what that budget leaves after its count of the delivered text.
 *
 * With a JSON constraint (`sampling.constraint`, what WebLLM enforces with a grammar) it answers
 * JSON that matches the schema instead, cut into 6-character tokens: `jsonInstance` below builds
 * the value. A string property named `content` carries "You said: …"; other strings are the
 * property's name; numbers their minimum (or 0); arrays their minimum length (at least one item).
 * In `anyOf`/`oneOf` it takes the first branch, unless the last message says "call <name>" and a
 * later branch holds that name as a `const` — so a test steers the engine into a tool call by
 * asking for it, as a user would.
 *
 * With `sampling.logprobs` it also returns each token it decoded (not those prefilled from
 * `continueFrom`) with its log-probability and alternatives (`tokenLogprob` below).
 */

export function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

export function answerText(input: JobInput): string {
  if (input.kind === "completion") return `Continuing: ${input.prompt}`;
  // An embedding job writes no text (its answer is vectors: embeddingOf below).
  if (input.kind === "embedding") return "";
  const lastUser = [...input.messages].reverse().find((m) => m.role === "user");
  return `You said: ${lastUser?.content ?? ""}`;
}

type Schema = { [key: string]: unknown };

/** A JSON value matching `schema` (the subset shared/openai/json-schema.ts lets through). */
export function jsonInstance(schema: unknown, input: JobInput): unknown {
  const root = schema as Schema;
  const last =
    input.kind === "chat"
      ? (input.messages.at(-1)?.content ?? "")
      : input.kind === "completion"
        ? input.prompt
        : "";
  const resolve = (s: Schema): Schema => {
    const ref = s.$ref;
    if (typeof ref !== "string") return s;
    if (ref === "#") return root;
    const [, bag, name] = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref) ?? [];
    return resolve(((root[bag as string] as Schema)[name as string] as Schema) ?? {});
  };
  const build = (node: unknown, key: string): unknown => {
    if (node === true || node === undefined) return key === "content" ? answerText(input) : key;
    const s = resolve(node as Schema);
    if ("const" in s) return s.const;
    if (Array.isArray(s.enum)) return s.enum[0];
    const branches = (s.anyOf ?? s.oneOf ?? s.allOf) as unknown[] | undefined;
    if (branches) {
      const asked = branches.find((b) =>
        [...JSON.stringify(b).matchAll(/"const":"([^"]+)"/g)].some((m) =>
          last.includes(`call ${m[1]}`),
        ),
      );
      return build(asked ?? branches[0], key);
    }
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string | undefined];
    const type =
      types.find((t) => t !== "null") ?? types[0] ?? (s.properties ? "object" : undefined);
    switch (type) {
      case "object": {
        const props = (s.properties ?? {}) as Record<string, unknown>;
        const required = (s.required as string[] | undefined) ?? Object.keys(props);
        const out: Record<string, unknown> = {};
        for (const name of required) out[name] = build(props[name], name);
        if (!required.length && s.additionalProperties === true) out.answer = answerText(input);
        return out;
      }
      case "array": {
        const prefix = (s.prefixItems ?? []) as unknown[];
        const min = Math.max((s.minItems as number | undefined) ?? 1, prefix.length, 1);
        const n = Math.min(min, (s.maxItems as number | undefined) ?? min);
        return Array.from({ length: n }, (_, i) => build(prefix[i] ?? s.items, key));
      }
      case "string": {
        let text = key === "content" ? answerText(input) : key;
        const minLength = (s.minLength as number | undefined) ?? 0;
        while (text.length < minLength) text += "x";
        return s.maxLength !== undefined ? text.slice(0, s.maxLength as number) : text;
      }
      case "integer":
      case "number": {
        const min = (s.minimum as number | undefined) ?? (s.exclusiveMinimum as number | undefined);
        const base = min === undefined ? 0 : s.exclusiveMinimum !== undefined ? min + 1 : min;
        return s.maximum !== undefined ? Math.min(base, s.maximum as number) : base;
      }
      case "boolean":
        return true;
      case "null":
        return null;
      default:
        return key === "content" ? answerText(input) : key;
    }
  };
  return build(root, "");
}

/** The answer as the tokens the engine emits, concatenated without separators. */
export function answerTokens(input: JobInput, sampling: Sampling): string[] {
  if (sampling.constraint) {
    const json = JSON.stringify(jsonInstance(sampling.constraint.schema, input));
    return json.match(/[\s\S]{1,6}/g) ?? [];
  }
  return words(answerText(input)).map((w, i) => (i === 0 ? w : ` ${w}`));
}

function promptTokens(input: JobInput): number {
  if (input.kind === "embedding") return embedPromptTokens(input.inputs);
  return input.kind === "completion"
    ? words(input.prompt).length
    : input.messages.reduce((n, m) => n + words(m.content).length, 0);
}

/** What the engine will produce for an input, computed without running it (for assertions). */
export function expectedOutput(
  input: JobInput,
  sampling: Sampling,
): { text: string; finishReason: FinishReason; usage: Usage } {
  let text = "";
  let generated = 0;
  let finishReason: FinishReason = "stop";
  for (const token of answerTokens(input, sampling)) {
    if (generated === sampling.max_tokens) {
      finishReason = "length";
      break;
    }
    generated++;
    const next = text + token;
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

/**
 * Score noise of one "GPU class": honest engines on different GPUs agree closely, not exactly
 * (docs/trust.md). `sd` spreads every log-prob a little (natural log units); with `flipRate` a
 * token the model would produce is nevertheless scored as unlikely (a near-tie that went the other
 * way on this GPU). `seed` makes a class's noise reproducible.
 */
export interface ScoreNoise {
  sd: number;
  flipRate: number;
  seed: number;
}

export const NO_NOISE: ScoreNoise = { sd: 0, flipRate: 0, seed: 0 };

/** Log-probs the deterministic model gives: its own token, a token it knows, a foreign token. */
export const SCORE_LOGPROBS = { own: -0.05, known: -3.5, foreign: -11, flip: -6 } as const;

/** The claimed answer cut into this engine's tokens (words with their leading space; JSON in 6s). */
export function claimTokens(answer: string, sampling: Sampling): string[] {
  if (sampling.constraint) return answer.match(/[\s\S]{1,6}/g) ?? [];
  return answer.match(/\s*\S+/g) ?? [];
}

/**
 * Teacher-forced scoring by the deterministic model, as a pure function (the bench's simulated
 * tabs use it too): each claimed token is scored against what this model would have produced at
 * that position — its own token high, a token of its answer elsewhere lower, foreign text very
 * low — plus the class's noise, drawn from the audit's seed.
 */
export function scoreClaim(request: ScoreRequest, noise: ScoreNoise = NO_NOISE): ScoreResult {
  // A window of a long answer is scored where it stands: after the prefix's tokens.
  const before = claimTokens(request.prefix ?? "", request.sampling);
  const own = answerTokens(request.input, request.sampling).slice(before.length);
  const all = claimTokens(request.answer, request.sampling);
  const claimed = all.slice(0, request.maxTokens);
  // As the product's verifier (webllm-engine.ts `score`): no stop after a cut answer.
  const scoreStop = request.scoreStop && all.length <= request.maxTokens;
  const rng = createRng((request.seed ^ Math.imul(noise.seed, 0x9e3779b1)) >>> 0);
  const ownSet = new Set(own.map((t) => t.trim()));
  const tokenLogprobs = claimed.map((token, i) => {
    let lp: number =
      token === own[i]
        ? SCORE_LOGPROBS.own
        : ownSet.has(token.trim())
          ? SCORE_LOGPROBS.known
          : SCORE_LOGPROBS.foreign;
    // A near-tie that went the other way: unlikely, sometimes very unlikely (a heavy tail).
    if (token === own[i] && rng.next() < noise.flipRate)
      lp = SCORE_LOGPROBS.flip - rng.exponential(2);
    return Math.min(0, lp - Math.abs(rng.normal()) * noise.sd);
  });
  const complete = claimed.length === own.length && claimed.every((token, i) => token === own[i]);
  // As the product's verifier: for a job that asked for logprobs, scored from its start, each
  // token's entry as this model reports it when it generates (`tokenLogprob`: its own token first).
  const asked = request.sampling.logprobs;
  const reported =
    asked && !request.prefix
      ? claimed.map((token, i) => {
          // As the product's verifier: the most alternatives served, whatever the job asked for.
          const top = tokenLogprob(token, SERVED_TOP_LOGPROBS).top;
          return {
            token,
            logprob: tokenLogprobs[i]!,
            top: top.map((t) => t.logprob),
            topTokens: top.map((t) => t.token),
          };
        })
      : undefined;
  return {
    tokenLogprobs,
    stopLogprob: scoreStop ? (complete ? -0.1 : -9) : null,
    answerTokens: before.length + all.length,
    ...(reported ? { reported } : {}),
  };
}

/**
 * The deterministic "embedding model": a unit vector of `dimensions` values drawn from a seed that
 * is a hash (FNV-1a) of the text, so equal texts embed equally and tests can recompute it.
 */
export function embeddingOf(text: string, dimensions: number): Float32Array {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  const rng = createRng(hash >>> 0);
  const v = Float32Array.from({ length: dimensions }, () => rng.normal());
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** Tokens the deterministic embedding model reads: its words plus a start and an end marker. */
export function embedPromptTokens(texts: readonly string[]): number {
  return texts.reduce((n, t) => n + words(t).length + 2, 0);
}

export class DeterministicEngine implements InferenceEngine {
  /** This engine's "GPU class" noise when it re-scores an answer. */
  scoreNoise: ScoreNoise = NO_NOISE;

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
      request.answerMaxTokens,
    );
  }

  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    return this.generate(
      { kind: "completion", prompt: request.prompt },
      request.sampling,
      onDelta,
      request.continueFrom ?? "",
      request.answerMaxTokens,
    );
  }

  /** Teacher-forced scoring: one short await per fed token (decode speed), no text produced. */
  async score(request: ScoreRequest): Promise<ScoreResult> {
    if (!this.loaded) throw new EngineError("not_loaded", "no model is loaded");
    if (this.generating) throw new EngineError("engine_error", "a generation is already running");
    this.generating = true;
    try {
      const result = scoreClaim(request, this.scoreNoise);
      for (let i = 0; i < result.tokenLogprobs.length; i += 8) await this.tick();
      this.generations++;
      return result;
    } finally {
      this.generating = false;
    }
  }

  /** One short await per text (the batch's forward passes), then the deterministic vectors. */
  async embed(request: EmbedRequest): Promise<EmbedResult> {
    if (!this.loaded) throw new EngineError("not_loaded", "no model is loaded");
    if (this.generating) throw new EngineError("engine_error", "a generation is already running");
    this.generating = true;
    try {
      for (let i = 0; i < request.texts.length; i += 8) await this.tick();
      this.generations++;
      return {
        vectors: request.texts.map((t) => embeddingOf(t, request.dimensions)),
        promptTokens: embedPromptTokens(request.texts),
      };
    } finally {
      this.generating = false;
    }
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
    answerMaxTokens?: number,
  ): Promise<GenerationResult> {
    if (!this.loaded) throw new EngineError("not_loaded", "no model is loaded");
    if (this.generating) throw new EngineError("engine_error", "a generation is already running");
    this.generating = true;
    this.abortRequested = false;
    // Tokens wholly inside the delivered text are prefilled: max_tokens counts the ones after.
    const tokens = answerTokens(input, sampling);
    let prefilled = 0;
    for (let at = 0; prefilled < tokens.length; prefilled++) {
      at += (tokens[prefilled] as string).length;
      if (at > continueFrom.length) break;
    }
    // With the whole answer's budget (protocol 8) its own count of the delivered text sets what
    // is left; else `max_tokens` is the coordinator's bound of what is left.
    const expected = expectedOutput(input, {
      ...sampling,
      max_tokens:
        continueFrom && answerMaxTokens !== undefined
          ? answerMaxTokens
          : sampling.max_tokens + prefilled,
    });
    const started = performance.now();
    let sent = "";
    let generated = 0;
    let finishReason = expected.finishReason;
    const logprobs: TokenLogprob[] | undefined = sampling.logprobs ? [] : undefined;
    let given = 0;
    try {
      // Replay the expected text token by token, as a real decoder would produce it.
      for (const [i, token] of tokens.slice(0, expected.usage.completion_tokens).entries()) {
        const next = sent + token;
        if (i < prefilled) {
          sent = next;
          continue;
        }
        await this.tick();
        if (this.abortRequested) {
          finishReason = "abort";
          break;
        }
        generated++;
        if (logprobs && sampling.logprobs)
          logprobs.push(tokenLogprob(token, sampling.logprobs.top));
        const from = Math.max(sent.length, continueFrom.length);
        const piece = expected.text.slice(from, Math.min(next.length, expected.text.length));
        // As WebLLM's adapter does: each piece with the entries decoded since the last piece.
        if (piece) onDelta(piece, logprobs?.slice(given));
        if (piece) given = logprobs?.length ?? 0;
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
      ...(continueFrom ? { continuedTokens: prefilled } : {}),
      ...(logprobs ? { logprobs } : {}),
    };
  }
}

/**
 * The deterministic model's log-probabilities for a token it emits: its own token at
 * SCORE_LOGPROBS.own, first of the `top` alternatives; the others are "alt1", "alt2", … each less
 * likely than the last.
 */
export function tokenLogprob(token: string, top: number): TokenLogprob {
  const own = { token, logprob: SCORE_LOGPROBS.own };
  const alternatives = Array.from({ length: Math.max(0, top - 1) }, (_, i) => ({
    token: `alt${i + 1}`,
    logprob: SCORE_LOGPROBS.known - i,
  }));
  return { ...own, top: top > 0 ? [own, ...alternatives] : [] };
}
