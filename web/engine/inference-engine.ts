import type { ModelRecord } from "../../shared/models/catalog.js";
import type {
  ChatMessage,
  FinishReason,
  Sampling,
  TextJobInput,
  Usage,
} from "../../shared/protocol/job.js";
import type { ReportedLogprob, TokenLogprob } from "../../shared/protocol/logprobs.js";

/**
 * The one interface every engine in the tab implements: the WebLLM engine in production, a
 * deterministic engine in tests (under test/). The contributor runtime only ever talks to this
 * interface, through comlink, so swapping the engine changes nothing else.
 *
 * One generation at a time: WebLLM serves one request per loaded model, so callers must not start
 * a second `chat`/`complete` before the first settles.
 */

export interface LoadProgress {
  /** 0..1 */
  progress: number;
  /** Human-readable step, e.g. WebLLM's "Fetching param cache[3/24]: 120MB fetched". */
  text: string;
}

/**
 * `continueFrom` (failover): answer text another tab already delivered to the client. The engine
 * continues right after it and its deltas carry only new text. `answerMaxTokens` (protocol 8): the
 * whole answer's max_tokens; an engine that can count `continueFrom`'s tokens writes at most the
 * rest (none when they reach it: finish reason "length") and reports the count as
 * `continuedTokens`; one that cannot keeps to `sampling.max_tokens`, the coordinator's bound.
 */
export interface ChatRequest {
  messages: ChatMessage[];
  sampling: Sampling;
  continueFrom?: string;
  answerMaxTokens?: number;
}

export interface CompletionRequest {
  prompt: string;
  sampling: Sampling;
  continueFrom?: string;
  answerMaxTokens?: number;
}

export interface GenerationResult {
  finishReason: FinishReason;
  /** Counted by the model's own tokenizer. */
  usage: Usage;
  /** Measured by the engine for this generation; absent when it could not be measured. */
  decodeTokensPerSecond?: number;
  /**
   * With `continueFrom`: the tokens the delivered text was (prefilled, not in `usage`'s
   * completion_tokens), when the engine counted them.
   */
  continuedTokens?: number;
  /**
   * Only when `sampling.logprobs` asked: each generated token's log-probability and its top
   * alternatives, in order (tokens prefilled from `continueFrom` have none).
   */
  logprobs?: TokenLogprob[];
}

export interface EngineStats {
  loadedModel: string | null;
  generations: number;
  /** Decode speed of the last generation, tokens/s (measured, not estimated). */
  lastDecodeTokensPerSecond: number | null;
}

/**
 * Re-scoring a claimed answer (an audit, docs/trust.md): the engine reads `input` as it would for
 * a job, then is teacher-forced through `answer` — each claimed token is fed as if it had been
 * sampled — and records how likely its own model found each one. No text is generated.
 * `scoreStop`: also record how likely the model was to end right after the answer (the claimed
 * finish was "stop" without a stop string), which catches truncated answers.
 */
export interface ScoreRequest {
  input: TextJobInput;
  /** The job's sampling fields (the engine uses only what shapes the prompt and tokenization). */
  sampling: Sampling;
  answer: string;
  /**
   * The answer's text before `answer` (a window of a long answer): read as the start of the reply,
   * not scored. The count (`answerTokens`) is of `prefix + answer`, the whole answer sent.
   */
  prefix?: string;
  /** Coordinator-chosen seed for this audit (engines that sample anything use it). */
  seed: number;
  scoreStop: boolean;
  /** Score at most this many tokens of the answer (the rest is not fed). */
  maxTokens: number;
}

export interface ScoreResult {
  /** Natural-log probability of each claimed token, in order, under this engine's model. */
  tokenLogprobs: number[];
  /** Log probability of ending right after the answer; null when not asked for. */
  stopLogprob: number | null;
  /**
   * How many tokens the whole claimed answer is, by this engine's tokenizer (however many were
   * scored; no stop token): the coordinator checks the audited tab's completion-token count by it
   * (shared/trust/token-counts.ts). Absent from an engine that cannot count.
   */
  answerTokens?: number;
  /**
   * For a job that asked for logprobs, scored from its start: each scored token's entry as the
   * engine would have reported it to a client (under the job's penalties and temperature), to
   * confirm the serving tab's claimed logprobs (shared/trust/logprob-agreement.ts). Absent from an
   * engine that cannot re-compute them.
   */
  reported?: ReportedLogprob[];
}

/**
 * Embedding (protocol 3): one vector per text, in order, from the loaded embedding model.
 * `dimensions` is the vector length the coordinator expects of this model; an engine whose model
 * gives another length fails rather than send vectors that would be refused.
 */
export interface EmbedRequest {
  texts: string[];
  dimensions: number;
}

export interface EmbedResult {
  /** One vector per text, float32 as the model computed it. */
  vectors: Float32Array[];
  /** Tokens the model read, counted by its own tokenizer (the coordinator bounds it). */
  promptTokens: number;
}

/**
 * A piece of generated text. `logprobs` (only when `sampling.logprobs` asked): the entries of the
 * tokens decoded since the last piece, so a stream can carry each piece's own. They are a prefix of
 * the result's `logprobs`, in order; any not given with a piece are still in the result.
 */
export type OnDelta = (text: string, logprobs?: TokenLogprob[]) => void;
export type OnProgress = (p: LoadProgress) => void;

export interface InferenceEngine {
  load(model: ModelRecord, onProgress: OnProgress): Promise<void>;
  /** Streams generated text through `onDelta` as it is produced; resolves when generation ends. */
  chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult>;
  /** Raw text completion: the prompt is fed as-is, no chat template applied. */
  complete(request: CompletionRequest, onDelta: OnDelta): Promise<GenerationResult>;
  /** Teacher-forced re-scoring of a claimed answer (one call at a time, like a generation). */
  score(request: ScoreRequest): Promise<ScoreResult>;
  /** Vectors of `texts` from an embedding model (one call at a time, like a generation). */
  embed(request: EmbedRequest): Promise<EmbedResult>;
  /** Stops the running generation; it then resolves with finishReason "abort". */
  abort(): Promise<void>;
  unload(): Promise<void>;
  stats(): Promise<EngineStats>;
}

/**
 * Why an engine call failed. `device_lost` means the GPU device is gone (often out of memory): the
 * model must be reloaded, possibly a smaller one. `aborted` is a load cancelled by `unload`.
 */
export type EngineErrorCode =
  | "device_lost"
  | "load_failed"
  | "out_of_memory"
  | "cache_corrupted"
  | "engine_error"
  /**
   * The request cannot run on this model as asked (its prompt is longer than the context window):
   * the request's fault, not the tab's, and the coordinator hears it as `bad_request`.
   */
  | "bad_request"
  | "aborted"
  | "not_loaded"
  | "worker_crashed"
  /** The page stopped the engine Worker on purpose (terminate): not a crash, nothing to reload. */
  | "worker_stopped"
  | "benchmark_failed";

/** The plain payload that crosses the Worker boundary (structured clone keeps only plain data). */
export interface EngineErrorPayload {
  code: EngineErrorCode;
  message: string;
}

export class EngineError extends Error {
  override readonly name = "EngineError";
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
  }

  toPayload(): EngineErrorPayload {
    return { code: this.code, message: this.message };
  }

  static fromPayload(p: EngineErrorPayload): EngineError {
    return new EngineError(p.code, p.message);
  }
}

/** Result of a call across the Worker boundary: a value, or a typed error payload. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: EngineErrorPayload };
