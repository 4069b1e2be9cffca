import type { CompletionUsage } from "@mlc-ai/web-llm";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { isEmbeddingModel } from "../../shared/models/embedding-models.js";
import { utf8ByteLength } from "../../shared/protocol/frames.js";
import type { FinishReason, Sampling } from "../../shared/protocol/job.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";
import { cacheNote, classifyLoadFailure } from "./cache-backend.js";
import { renderContinuation, type ConvTemplate } from "./conv-template.js";
import { CACHE_DAMAGE, toEngineError } from "./engine-errors.js";
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
} from "../engine/inference-engine.js";
import { TeacherForcer, type ReportSettings } from "./teacher-forcer.js";
import {
  appConfigFor,
  defaultFactory,
  engineReporting,
  engineTokenizer,
  fetchConvTemplate,
  webllmCache,
  type ConvTemplateSource,
  type ModelCacheOps,
  type TokenizerSource,
  type WebLLMEngineApi,
  type WebLLMEngineFactory,
} from "./webllm-api.js";
import {
  logprobEntry,
  logprobsFields,
  reportSettings,
  reportedEntry,
  samplingFields,
  toFinishReason,
  toWebLLMMessage,
} from "./webllm-fields.js";

/** A continuation that ends where it starts: the answer is already full, by a count or the bound. */
const ENDS_WHERE_IT_STARTS: GenerationResult = {
  finishReason: "length",
  usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
};

/** WebLLM's error when its grammar matcher refuses a token (0.2.79 and 0.2.86 alike). */
const GRAMMAR_REFUSED = /Grammar matcher rejected/;

/**
 * A continuation's result with the delivered text's `continued` tokens taken out of the count
 * WebLLM put them in — the prompt (prefilled as part of it) or the completion (forced through
 * the decode loop) — and reported as `continuedTokens`.
 */
/**
 * A continuation whose prompt plus the delivered text no longer fits the model's context window:
 * the answer has reached it, so it ends there as a cut (`length`, nothing more written) — not
 * an invalid request, which the first tab ran (review, session 14: engine-errors.ts would call it
 * `bad_request`, and two trusted tabs continuing it would give the client a 400).
 */
function contextFilled(err: unknown): GenerationResult | null {
  if (!(err instanceof Error) || err.name !== "ContextWindowSizeExceededError") return null;
  return {
    finishReason: "length",
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  };
}

/** Run a continuation: one that finds the context full ends as a cut (`contextFilled`). */
async function continuing(run: () => Promise<GenerationResult>): Promise<GenerationResult> {
  try {
    return await run();
  } catch (err) {
    const filled = contextFilled(err);
    if (filled) return filled;
    throw err;
  }
}

function movedToContinued(
  r: GenerationResult,
  continued: number,
  from: "prompt" | "completion",
): GenerationResult {
  const prompt = Math.max(0, r.usage.prompt_tokens - (from === "prompt" ? continued : 0));
  const completion = Math.max(
    0,
    r.usage.completion_tokens - (from === "completion" ? continued : 0),
  );
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
  return { ...r, usage, continuedTokens: continued };
}

/**
 * The production engine: WebLLM's MLCEngine, created inside Tabgrid's own Worker (so tokenizer
 * and GPU work never block the page), behind the project's one engine interface. What of WebLLM it
 * reaches is in webllm-api.ts.
 */
export class WebLLMEngine implements InferenceEngine {
  private engine: WebLLMEngineApi | null = null;
  private model: ModelRecord | null = null;
  private convTemplate: Promise<ConvTemplate> | null = null;
  private generating = false;
  private abortRequested = false;
  private generations = 0;
  private lastDecodeTps: number | null = null;
  /** Registered with every engine this adapter creates; idle unless an audit is scoring. */
  private readonly forcer = new TeacherForcer();
  private tokenize: Promise<(text: string) => number[]> | null = null;

  constructor(
    private readonly createEngine: WebLLMEngineFactory = defaultFactory,
    private readonly readConvTemplate: ConvTemplateSource = fetchConvTemplate,
    private readonly cache: ModelCacheOps = webllmCache,
    private readonly readTokenizer: TokenizerSource = engineTokenizer,
  ) {}

  /**
   * Load a model. A load that fails on damaged cached files (partial download, truncated shard)
   * clears that model from the cache and downloads it again, once. The GPU device lost while
   * loading is reported as out_of_memory: that is by far its most common cause at this point.
   */
  async load(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    try {
      await this.loadOnce(model, onProgress);
    } catch (err) {
      if (!(err instanceof EngineError) || err.code !== "cache_corrupted") throw err;
      onProgress({
        progress: 0,
        text: `The cached copy of ${model.model_id} was damaged; cleared it, downloading again…`,
      });
      await this.loadOnce(model, onProgress, false);
    }
  }

  private async loadOnce(
    model: ModelRecord,
    onProgress: OnProgress,
    checkCache = true,
  ): Promise<void> {
    await this.unload();
    // Storage first: a refused Cache API falls back to IndexedDB; both refused fails here, as a
    // storage error (cache-backend.ts), before anything is downloaded.
    const choice = await this.cache.choose();
    if (choice.backend !== "cache") onProgress({ progress: 0, text: `${cacheNote(choice)}.` });
    try {
      // Hand WebLLM exactly the catalog record (weights and library URLs come from the
      // coordinator's catalog, so operators' self-hosted models load the same way).
      this.engine = await this.createEngine(model.model_id, {
        appConfig: appConfigFor(model, choice.backend),
        initProgressCallback: (r) => onProgress({ progress: r.progress, text: r.text }),
        // The processor is bound when the model loads, so it is registered once, idle until an
        // audit arms it. (While idle WebLLM still copies each step's logits to the CPU.)
        logitProcessorRegistry: new Map([[model.model_id, this.forcer]]),
      });
      this.model = model;
    } catch (err) {
      this.engine = null;
      const e = toEngineError(err, "load_failed");
      if (e.code === "device_lost") {
        throw new EngineError(
          "out_of_memory",
          `The GPU device was lost while loading ${model.model_id}, most likely out of GPU memory. (${e.message})`,
        );
      }
      if (
        checkCache &&
        e.code === "load_failed" &&
        CACHE_DAMAGE.test(e.message) &&
        (await this.cache.has(model, choice.backend).catch(() => false))
      ) {
        await this.cache.clear(model, choice.backend);
        throw new EngineError(
          "cache_corrupted",
          `damaged cache for ${model.model_id}: ${e.message}`,
        );
      }
      // Refused storage (SecurityError on CacheStorage.open, a full disk) or a failed download
      // (a bare TypeError "Failed to fetch", "Request failed" from Cache.add): told apart by what
      // failed, never by the mere mention of "Cache".
      const failure = e.code === "load_failed" ? classifyLoadFailure(e.message, choice) : null;
      if (failure) throw new EngineError("load_failed", failure.message);
      throw e;
    }
  }

  chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    if (request.continueFrom) return this.continueChat(request, request.continueFrom, onDelta);
    const asked = request.sampling.logprobs;
    return this.generate("keep-conversation", async (engine) => {
      const stream = await engine.chat.completions.create({
        stream: true,
        stream_options: { include_usage: true },
        messages: request.messages.map(toWebLLMMessage),
        ...samplingFields(request.sampling),
        ...logprobsFields(request.sampling),
      });
      // WebLLM's stream carries, per chunk, the entry of the last token decoded for it; each
      // piece of text goes out with the entries decoded since the last piece.
      const logprobs = asked ? ([] as TokenLogprob[]) : undefined;
      let given = 0;
      const withLogprobs: OnDelta = logprobs
        ? (text) => {
            const fresh = logprobs.slice(given);
            given = logprobs.length;
            onDelta(text, fresh);
          }
        : onDelta;
      const result = await this.drain(
        stream,
        (c) => {
          if (logprobs && asked)
            for (const e of c.choices[0]?.logprobs?.content ?? [])
              logprobs.push(logprobEntry(e, asked.top));
          return c.choices[0]?.delta?.content ?? "";
        },
        withLogprobs,
      );
      return logprobs ? { ...result, logprobs } : result;
    });
  }

  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult> {
    const partial = request.continueFrom ?? "";
    return this.generate("reset", async (engine, model) => {
      if (partial)
        return continuing(() => this.completeOn(engine, model, request, partial, onDelta));
      return this.completeOn(engine, model, request, partial, onDelta);
    });
  }

  private async completeOn(
    engine: WebLLMEngineApi,
    model: ModelRecord,
    request: CompletionRequest,
    partial: string,
    onDelta: OnDelta,
  ): Promise<GenerationResult> {
    const budget = partial
      ? await this.continuationBudget(engine, model, request, partial)
      : { maxTokens: request.sampling.max_tokens, full: null, ids: null };
    if (budget.full) return budget.full;
    const stream = await engine.completions.create({
      stream: true,
      stream_options: { include_usage: true },
      // Continuing a plain completion is completing the prompt plus the text already sent.
      prompt: request.prompt + partial,
      ...samplingFields(request.sampling),
      max_tokens: budget.maxTokens,
    });
    const result = await this.drain(stream, (c) => c.choices[0]?.text ?? "", onDelta);
    return budget.ids ? movedToContinued(result, budget.ids.length, "prompt") : result;
  }

  /**
   * What a continuation may still write. With the whole answer's `answerMaxTokens` (protocol 8)
   * the model's own tokenizer counts the delivered text, so a failover leaves the client the
   * tokens it asked for rather than the coordinator's one-per-byte bound (`sampling.max_tokens`,
   * kept when the tokenizer is out of reach). The count is of the text on its own; inside the
   * rendered prompt a merge across its first boundary can differ by a token. `ids`: the delivered
   * text's token ids, when the tokenizer was in reach.
   */
  private async continuationBudget(
    engine: WebLLMEngineApi,
    model: ModelRecord,
    request: { sampling: Sampling; answerMaxTokens?: number },
    partial: string,
  ): Promise<{ maxTokens: number; full: GenerationResult | null; ids: number[] | null }> {
    this.tokenize ??= this.readTokenizer(engine, model);
    const encode = await this.tokenize.catch(() => {
      this.tokenize = null;
      return null;
    });
    const ids = encode ? encode(partial) : null;
    const { answerMaxTokens } = request;
    if (!ids && answerMaxTokens !== undefined && answerMaxTokens <= utf8ByteLength(partial)) {
      // Asked to count (only a count could say whether the answer is full) and unable to: by the
      // coordinator's own bound it may be, so it ends here rather than write past it.
      return { maxTokens: 0, full: ENDS_WHERE_IT_STARTS, ids };
    }
    if (!ids || answerMaxTokens === undefined) {
      return { maxTokens: request.sampling.max_tokens, full: null, ids };
    }
    const left = answerMaxTokens - ids.length;
    const full = left > 0 ? null : { ...ENDS_WHERE_IT_STARTS, continuedTokens: ids.length };
    return { maxTokens: Math.max(1, left), full, ids };
  }

  /**
   * Continue an answer another tab started. A constrained (JSON) answer resumes its grammar
   * (`resumeGrammar`) where it can; otherwise — and for unconstrained answers — WebLLM's chat API
   * refuses a conversation ending with the assistant, so the conversation is rendered with the
   * model's template and continued with the raw completion API, with the template's stop strings
   * (its stop token ids are applied by WebLLM for every request). WebLLM then counts the delivered
   * text as prompt tokens; with the tokenizer in reach they move to `continuedTokens`.
   */
  private continueChat(
    request: ChatRequest,
    partial: string,
    onDelta: OnDelta,
  ): Promise<GenerationResult> {
    return this.generate("reset", (engine, model) =>
      continuing(async () => {
        const budget = await this.continuationBudget(engine, model, request, partial);
        if (budget.full) return budget.full;
        if (request.sampling.constraint && budget.ids) {
          const resumed = await this.resumeGrammar(engine, request, partial, budget, onDelta);
          if (resumed) return resumed;
          await engine.resetChat();
        }
        this.convTemplate ??= this.readConvTemplate(model);
        const conv = await this.convTemplate.catch((err: unknown) => {
          this.convTemplate = null;
          throw new EngineError("engine_error", `cannot continue: ${String(err)}`);
        });
        // Without a grammar to resume, a constrained answer continues unconstrained; the
        // coordinator still parses the whole answer and reports a 502 if it no longer reads.
        const { response_format: _dropped, ...fields } = samplingFields(request.sampling);
        void _dropped;
        const stop = [...(fields.stop ?? []), ...conv.stop_str];
        const stream = await engine.completions.create({
          stream: true,
          stream_options: { include_usage: true },
          prompt: renderContinuation(conv, request.messages, partial),
          ...fields,
          max_tokens: budget.maxTokens,
          stop: stop.length ? stop : undefined,
        });
        const result = await this.drain(stream, (c) => c.choices[0]?.text ?? "", onDelta);
        return budget.ids ? movedToContinued(result, budget.ids.length, "prompt") : result;
      }),
    );
  }

  /**
   * A constrained answer continues under its grammar. xgrammar's matcher cannot be started in the
   * middle of a JSON text, so the delivered text's tokens are fed through WebLLM's own decode loop
   * by the teacher forcer (as audits feed a claimed answer): each forced token passes the grammar's
   * mask and is accepted by its matcher as if sampled, so after them the matcher stands where the
   * first tab left off and generation goes on under the grammar. The forced steps cost a decode
   * step each, and their text — the delivered text again — is not sent. Null, with nothing sent,
   * when the delivered text cannot be replayed: the grammar refuses it (it is no prefix of an
   * answer the schema allows: the first tab's text broke it, and WebLLM stops at the refused
   * token), the forced tokens decode to other text, or the stream ends first; the caller then
   * continues unconstrained, as before this existed.
   */
  private async resumeGrammar(
    engine: WebLLMEngineApi,
    request: ChatRequest,
    partial: string,
    budget: { maxTokens: number; ids: number[] | null },
    onDelta: OnDelta,
  ): Promise<GenerationResult | null> {
    const ids = budget.ids ?? [];
    let skip = partial;
    this.forcer.arm(ids, []);
    let result: GenerationResult;
    const notReplayed = new Error("the forced tokens did not decode to the delivered text");
    try {
      const stream = await engine.chat.completions.create({
        stream: true,
        stream_options: { include_usage: true },
        messages: request.messages.map(toWebLLMMessage),
        ...samplingFields(request.sampling),
        max_tokens: ids.length + budget.maxTokens,
      });
      result = await this.drain(
        stream,
        (c) => {
          const text = c.choices[0]?.delta?.content ?? "";
          if (!skip) return text;
          // The forced tokens decode to the delivered text, perhaps cut differently into chunks.
          // If they do not (the tokenizer normalises what it encodes, say), nothing is sent yet:
          // the unconstrained path continues after the text the client really has.
          const n = Math.min(skip.length, text.length);
          if (text.slice(0, n) !== skip.slice(0, n)) throw notReplayed;
          skip = skip.slice(n);
          return text.slice(n);
        },
        onDelta,
      );
    } catch (err) {
      if (skip && (err === notReplayed || GRAMMAR_REFUSED.test(String(err)))) return null;
      throw err;
    } finally {
      this.forcer.disarm();
    }
    // Ended before the delivered text was all replayed: stopped (the job was cancelled), or not
    // resumed at all (the unconstrained path goes on from the delivered text).
    if (skip && result.finishReason !== "abort") return null;
    return movedToContinued(result, ids.length, "completion");
  }

  /**
   * Re-score a claimed answer by teacher forcing (docs/trust.md): the job's input goes through the
   * chat (or completion) API as usual; the forcer makes the model "generate" exactly the claimed
   * token ids, recording each one's log-probability. Decoding runs at decode speed, one step per
   * claimed token, without sampling parameters (nothing is sampled), but from the distribution the
   * serving tab sampled from as far as WebLLM lets a processor see it: the job's `logit_bias` added
   * to the logits, and a chat job's grammar masking them (`forced`). Plausibility is judged without
   * penalties and temperature; for a job that asked for logprobs each token's entry is also
   * re-computed with them (`reported`), to confirm the serving tab's (docs/trust.md, "Claimed
   * logprobs").
   */
  score(request: ScoreRequest): Promise<ScoreResult> {
    return this.generate("reset", async (engine, model) => {
      this.tokenize ??= this.readTokenizer(engine, model);
      const encode = await this.tokenize.catch((err: unknown) => {
        this.tokenize = null;
        throw err;
      });
      const all = encode(request.answer);
      const ids = all.slice(0, request.maxTokens);
      // The stop is scored only after the whole answer: after a cut one, "the model ends here" is
      // judged in mid-answer, where an honest model finds stopping unlikely.
      let stopIds: number[] = [];
      if (request.scoreStop && all.length <= request.maxTokens) {
        this.convTemplate ??= this.readConvTemplate(model);
        stopIds = (await this.convTemplate.catch(() => null))?.stop_token_ids ?? [];
      }
      const steps = ids.length + (stopIds.length ? 1 : 0);
      // The whole answer's count, not only the scored part's: the coordinator compares it with the
      // audited tab's completion tokens (shared/trust/token-counts.ts).
      const answerTokens = request.prefix
        ? encode(request.prefix + request.answer).length
        : all.length;
      if (steps === 0) return { tokenLogprobs: [], stopLogprob: null, answerTokens };
      // A window of a long answer: the text before it is the start of the reply, prefilled.
      const prompt = request.prefix
        ? await this.windowPrompt(model, request, request.prefix)
        : null;
      // A job that asked for logprobs, scored from its start: each token's entry is also
      // re-computed as WebLLM reported it (a window's prefix tokens would be missing from the
      // penalties' counts, so windows report nothing).
      const parts =
        request.sampling.logprobs && !request.prefix ? engineReporting(engine, model) : null;
      const report = parts ? reportSettings(request.sampling, parts) : undefined;
      const scored = (grammar: boolean) =>
        this.forced(engine, request, ids, stopIds, grammar, prompt, report);
      let recorded: Awaited<ReturnType<typeof scored>>;
      if (request.sampling.constraint && prompt === null) {
        // Under the job's grammar first: WebLLM masks the logits with it before the processor
        // runs (0.2.86 sampleFromRawLogits: bitmask, then processLogits), so each token is scored
        // among the tokens the serving tab could pick, as it sampled — unmasked, a token the
        // grammar forced (a JSON brace where the model would rather talk) can read as
        // implausible. The encoder's tokens may be a split the grammar refuses where the serving
        // tab's were not (or a liar's text leaves the schema): then scored without it, as before.
        try {
          recorded = await scored(true);
        } catch (err) {
          if (!GRAMMAR_REFUSED.test(String(err))) throw err;
          await engine.resetChat();
          recorded = await scored(false);
        }
      } else {
        recorded = await scored(false);
      }
      if (recorded.diverged || recorded.tokenLogprobs.length !== ids.length) {
        throw new EngineError(
          "engine_error",
          `teacher forcing fed ${recorded.tokenLogprobs.length} of ${ids.length} claimed tokens`,
        );
      }
      const reported =
        parts && recorded.reported
          ? recorded.reported.map((step, i) =>
              reportedEntry(step, ids[i]!, (id) => parts.decode(id)),
            )
          : undefined;
      return {
        tokenLogprobs: recorded.tokenLogprobs,
        stopLogprob: stopIds.length ? recorded.stopLogprob : null,
        answerTokens,
        ...(reported ? { reported } : {}),
      };
    });
  }

  /**
   * The raw prompt that has the model go on from `prefix` as its reply: a chat rendered with the
   * model's conversation template as a failover renders it (conv-template.ts; WebLLM's chat API
   * refuses a conversation ending with the assistant), a completion's prompt followed by it. No
   * grammar can start there (xgrammar's matcher starts at the answer's first byte), so a window is
   * scored without one: the coordinator sends windows only of free text.
   */
  private async windowPrompt(
    model: ModelRecord,
    request: ScoreRequest,
    prefix: string,
  ): Promise<string> {
    if (request.input.kind === "completion") return request.input.prompt + prefix;
    this.convTemplate ??= this.readConvTemplate(model);
    const conv = await this.convTemplate.catch((err: unknown) => {
      this.convTemplate = null;
      throw new EngineError("engine_error", `cannot score a window: ${String(err)}`);
    });
    return renderContinuation(conv, request.input.messages, prefix);
  }

  /**
   * One teacher-forced pass over the claimed ids (and the stop after them), recording what the
   * forcer saw: under the client's logit_bias always, under the job's grammar when `grammar`;
   * after `prompt` (a window's: the raw completion API) when given.
   */
  private async forced(
    engine: WebLLMEngineApi,
    request: ScoreRequest,
    ids: number[],
    stopIds: number[],
    grammar: boolean,
    prompt: string | null,
    report?: ReportSettings,
  ): Promise<ReturnType<TeacherForcer["disarm"]>> {
    this.forcer.arm(ids, stopIds, request.sampling.logit_bias, report);
    let recorded: ReturnType<TeacherForcer["disarm"]>;
    try {
      const fields = {
        max_tokens: ids.length + (stopIds.length ? 1 : 0),
        temperature: 0,
        seed: request.seed,
        ...(grammar ? { response_format: samplingFields(request.sampling).response_format } : {}),
      };
      const stream =
        prompt !== null
          ? await engine.completions.create({
              stream: true,
              stream_options: { include_usage: true },
              prompt,
              ...fields,
            })
          : request.input.kind === "chat"
            ? await engine.chat.completions.create({
                stream: true,
                stream_options: { include_usage: true },
                messages: request.input.messages.map(toWebLLMMessage),
                ...fields,
              })
            : await engine.completions.create({
                stream: true,
                stream_options: { include_usage: true },
                prompt: request.input.prompt,
                ...fields,
              });
      for await (const chunk of stream as AsyncIterable<unknown>) void chunk;
    } finally {
      recorded = this.forcer.disarm();
    }
    return recorded;
  }

  /**
   * Vectors from an embedding model (WebLLM's `engine.embeddings.create`, which batches the texts
   * by the model library's batch size). WebLLM's answer is checked before it leaves the tab: one
   * vector per text by `index`, each of the expected length, all finite — the coordinator would
   * refuse anything else as this tab's fault. Not through `generate`: an embedding pipeline has no
   * chat to reset.
   */
  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const engine = this.engine;
    const model = this.model;
    if (!engine || !model) throw new EngineError("not_loaded", "no model is loaded");
    if (!isEmbeddingModel(model)) {
      throw new EngineError("engine_error", `${model.model_id} is not an embedding model`);
    }
    if (this.generating) throw new EngineError("engine_error", "a generation is already running");
    this.generating = true;
    try {
      const answer = await engine.embeddings.create({
        input: request.texts,
        model: model.model_id,
      });
      const vectors: (Float32Array | undefined)[] = request.texts.map(() => undefined);
      for (const item of answer.data) {
        const v = item.embedding;
        if (!Number.isInteger(item.index) || item.index < 0 || item.index >= vectors.length) {
          throw new EngineError(
            "engine_error",
            `WebLLM answered an embedding for index ${item.index}`,
          );
        }
        if (v.length !== request.dimensions || !v.every(Number.isFinite)) {
          throw new EngineError(
            "engine_error",
            `${model.model_id} gave a vector of ${v.length} values (expected ${request.dimensions}, all finite)`,
          );
        }
        vectors[item.index] = Float32Array.from(v);
      }
      const missing = vectors.findIndex((v) => v === undefined);
      if (missing >= 0) throw new EngineError("engine_error", `no embedding for input ${missing}`);
      this.generations++;
      return { vectors: vectors as Float32Array[], promptTokens: answer.usage.prompt_tokens };
    } catch (err) {
      const e = toEngineError(err, "engine_error");
      if (e.code === "engine_error" && /ModelNotLoaded|EngineNotLoaded/.test(e.message)) {
        throw new EngineError("device_lost", `WebLLM dropped the model. (${e.message})`);
      }
      throw e;
    } finally {
      this.generating = false;
    }
  }

  async abort(): Promise<void> {
    if (!this.generating || !this.engine) return;
    this.abortRequested = true;
    this.engine.interruptGenerate();
  }

  async unload(): Promise<void> {
    const engine = this.engine;
    this.engine = null;
    this.model = null;
    this.convTemplate = null;
    this.tokenize = null;
    if (engine) await engine.unload();
  }

  async stats(): Promise<EngineStats> {
    return {
      loadedModel: this.model?.model_id ?? null,
      generations: this.generations,
      lastDecodeTokensPerSecond: this.lastDecodeTps,
    };
  }

  /**
   * `conversation`: what becomes of the conversation WebLLM holds from the previous request.
   * - "keep-conversation" (a chat job): WebLLM decides. It compares the request's messages before
   *   the last with the conversation it holds (the previous request's messages and the answer it
   *   wrote); when they are equal it prefills only the new message on top of its KV cache
   *   (multi-round chat), otherwise it resets by itself. So a follow-up turn that lands on the tab
   *   that served the turn before (the coordinator's conversation affinity) skips re-reading the
   *   history, and any other request starts from an empty cache as before. Nothing leaks between
   *   clients: reuse needs the new request to carry the whole held conversation, answer included.
   *   (WebLLM ≥ 0.2.80 also resets after an answer that ended by length or abort, whose last
   *   token is in the text but not in the cache.)
   * - "reset": everything else starts empty. An audit must re-score from a fresh prefill (the
   *   reused cache lacks the template's end-of-turn separator a fresh prompt has, which would
   *   shift its log-probabilities), and WebLLM's raw completion API requires an empty cache.
   */
  private async generate<T extends GenerationResult | ScoreResult>(
    conversation: "keep-conversation" | "reset",
    run: (engine: WebLLMEngineApi, model: ModelRecord) => Promise<T>,
  ): Promise<T> {
    const engine = this.engine;
    const model = this.model;
    if (!engine || !model) throw new EngineError("not_loaded", "no model is loaded");
    if (this.generating) throw new EngineError("engine_error", "a generation is already running");
    this.generating = true;
    this.abortRequested = false;
    try {
      if (conversation === "reset") await engine.resetChat();
      const result = await run(engine, model);
      this.generations++;
      if ("decodeTokensPerSecond" in result && result.decodeTokensPerSecond !== undefined)
        this.lastDecodeTps = result.decodeTokensPerSecond;
      return result;
    } catch (err) {
      const e = toEngineError(err, "engine_error");
      // WebLLM unloads its model by itself when the GPU device is lost after loading; the next
      // request then fails as "not loaded" although we loaded it.
      if (e.code === "engine_error" && /ModelNotLoaded|EngineNotLoaded/.test(e.message)) {
        throw new EngineError(
          "device_lost",
          `WebLLM dropped the model, most likely because the GPU device was lost. (${e.message})`,
        );
      }
      throw e;
    } finally {
      this.generating = false;
    }
  }

  private async drain<C extends { choices: { finish_reason?: string | null }[] }>(
    stream: AsyncIterable<C & { usage?: CompletionUsage }>,
    textOf: (chunk: C) => string,
    onDelta: OnDelta,
  ): Promise<GenerationResult> {
    let finish: FinishReason | null = null;
    let usage: CompletionUsage | undefined;
    for await (const chunk of stream) {
      const text = textOf(chunk);
      if (text) onDelta(text);
      finish = toFinishReason(chunk.choices[0]?.finish_reason) ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    if (this.abortRequested) finish = "abort";
    if (!usage) {
      // WebLLM sends usage in the final chunk when include_usage is set; without it we cannot
      // report token counts honestly.
      throw new EngineError("engine_error", "WebLLM ended the stream without a usage chunk");
    }
    const tps = usage.extra?.decode_tokens_per_s;
    return {
      finishReason: finish ?? "stop",
      usage: {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
      },
      ...(typeof tps === "number" && Number.isFinite(tps) ? { decodeTokensPerSecond: tps } : {}),
    };
  }
}
