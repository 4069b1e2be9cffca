import type {
  WireChunk,
  WireCompletion,
  WireTextCompletion,
} from "../../shared/protocol/sdk-wire.js";
import type { Stream } from "./stream.js";

/**
 * The SDK's public types (re-exported by index.ts): OpenAI-shaped request parameters and answers,
 * the client's options, and what a stream reports about its transport.
 */
export type ChatCompletionChunk = WireChunk;
export type ChatCompletion = WireCompletion;
/** Plain-text completions: each streamed chunk and the whole answer have the same shape. */
export type Completion = WireTextCompletion;

export interface ChatMessageParam {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string;
}

/** Fields both endpoints take. */
export interface CommonParams {
  model: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  tabgrid?: { latency_budget_ms?: number; resume_grace_ms?: number };
}

export interface ChatCompletionParams extends CommonParams {
  messages: ChatMessageParam[];
}

export interface CompletionParams extends CommonParams {
  /** One prompt (the coordinator serves one answer per request). */
  prompt: string | [string];
}

export interface ChatCompletions {
  create(
    params: ChatCompletionParams & { stream: true },
    options?: RequestOptions,
  ): Promise<ChatStream>;
  create(
    params: ChatCompletionParams & { stream?: false },
    options?: RequestOptions,
  ): Promise<ChatCompletion>;
}

export interface Completions {
  create(
    params: CompletionParams & { stream: true },
    options?: RequestOptions,
  ): Promise<CompletionStream>;
  create(
    params: CompletionParams & { stream?: false },
    options?: RequestOptions,
  ): Promise<Completion>;
}

export type ChatStream = Stream<ChatCompletionChunk>;
export type CompletionStream = Stream<Completion>;

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface TabgridOptions {
  /** The coordinator's API root, e.g. "https://tabgrid.example/v1" (default: this page's /v1). */
  baseURL?: string;
  apiKey?: string;
  /** "relay" (default): through the coordinator. "p2p": also directly from the tab over WebRTC. */
  transport?: "relay" | "p2p";
  /** How many times a dropped stream is resumed before giving up (default 3). */
  maxResumes?: number;
  /** STUN/TURN servers for the direct path (default: the operator's, from /v1/signal/ice). */
  iceServers?: RTCIceServer[];
  /** Where the p2p module is loaded from (default: <coordinator>/sdk/p2p.js). */
  p2pModuleUrl?: string;
  fetch?: typeof fetch;
  /** Called as each piece arrives on either path (instrumentation: bench:p2p measures with it). */
  onArrival?: (arrival: Arrival) => void;
}

export interface Arrival {
  path: "relay" | "direct";
  offset: number;
  length: number;
  /** performance.now() at arrival. */
  at: number;
}

/** Which path delivered the answer (for the curious, and for benchmarks). */
export interface TransportStats {
  transport: "relay" | "p2p";
  /** The tab's data channel opened. */
  directConnected: boolean;
  /** Characters that arrived first over each path. */
  firstBy: { relay: number; direct: number };
  resumes: number;
  /** The two paths disagreed about some text (docs/embed.md, "The direct path"). */
  diverged: boolean;
  /** Why the stream stopped taking text from the data channel, if it did (the relay went on). */
  directStopped: DirectStop | null;
}

/**
 * `diverged`: the data channel's text disagreed with the relay's (or went past its end);
 * `too_far_ahead`: it ran further ahead of the relay than one checkpoint window allows;
 * `two_tabs`: two tabs sent text for the job (a hedge race or a failover).
 */
export type DirectStop = "diverged" | "too_far_ahead" | "two_tabs";
