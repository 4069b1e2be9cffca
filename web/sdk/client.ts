import {
  WireErrorSchema,
  type WireChunk,
  type WireCompletion,
  type WireTextCompletion,
} from "../../shared/protocol/sdk-wire.js";
import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";
import { CHAT, TEXT, type AnswerShape, type ChunkHead } from "./answer-shape.js";
import type {
  DirectFeed,
  DirectReceiver,
  OpenDirectReceiver,
} from "../direct/client-receiver-types.js";
import { APIConnectionError, APIUserAbortError, TabgridError, apiError } from "./errors.js";
import { sseData } from "./sse.js";
import { TextMerger } from "./text-merger.js";

/**
 * The browser client: `new Tabgrid({ baseURL }).chat.completions.create(...)` and the plain-text
 * `.completions.create(...)`, OpenAI-shaped (stream and non-stream, AbortSignal), with no
 * dependency beyond itself. Both share one code path (see answer-shape.ts). A dropped stream is
 * resumed by job id (`GET /v1/jobs/:id/stream?after=<chars received>`), so the caller sees one
 * uninterrupted answer. With `transport: "p2p"` the serving tab also sends the text over a WebRTC
 * data channel; both paths are merged by character offset, so if ICE never connects the relay
 * carries the answer and nothing changes for the caller.
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
  diverged: boolean;
}

export class Tabgrid {
  readonly baseURL: string;
  readonly chat: { completions: ChatCompletions };
  readonly completions: Completions;
  private readonly opts: TabgridOptions;
  private readonly doFetch: typeof fetch;
  private link: Promise<DirectReceiver | null> | null = null;

  constructor(opts: TabgridOptions = {}) {
    this.opts = opts;
    this.baseURL = (opts.baseURL ?? `${globalThis.location?.origin ?? ""}/v1`).replace(/\/+$/, "");
    this.doFetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.chat = {
      completions: {
        create: (params: ChatCompletionParams, options?: RequestOptions) =>
          this.create(CHAT, params, options),
      } as ChatCompletions,
    };
    this.completions = {
      create: (params: CompletionParams, options?: RequestOptions) =>
        this.create(TEXT, params, options),
    } as Completions;
  }

  private async create<C extends ChunkHead, W>(
    shape: AnswerShape<C, W>,
    params: CommonParams,
    options: RequestOptions = {},
  ): Promise<Stream<C> | W> {
    if (params.stream) return this.openStream(shape, params, options.signal);
    const withUsage = { ...params, stream_options: { include_usage: true } };
    if (this.opts.transport === "p2p")
      return collect(shape, await this.openStream(shape, withUsage, options.signal));
    return this.whole(shape, params, options.signal);
  }

  /** Close the direct-path peer (if one was opened). */
  close(): void {
    void this.link?.then((l) => l?.close());
    this.link = null;
  }

  private async whole<C extends ChunkHead, W>(
    shape: AnswerShape<C, W>,
    params: CommonParams,
    signal?: AbortSignal,
  ): Promise<W> {
    const res = await this.request("POST", shape.path, { ...params, stream: false }, signal);
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      // The connection dropped after the job started: read it back as a resumed stream.
      const jobId = res.headers.get("x-tabgrid-job-id");
      if (signal?.aborted) throw new APIUserAbortError();
      if (!jobId) throw new APIConnectionError("the response was cut off", { cause: err });
      const withUsage = { ...params, stream_options: { include_usage: true } };
      return collect(shape, new Stream(this, shape, withUsage, jobId, null, null, 0, signal));
    }
    const parsed = shape.parseWhole(body);
    if (!parsed) throw new TabgridError("the coordinator sent an unexpected completion body");
    return parsed;
  }

  private async openStream<C extends ChunkHead>(
    shape: AnswerShape<C, unknown>,
    params: CommonParams,
    signal?: AbortSignal,
  ): Promise<Stream<C>> {
    const link = this.opts.transport === "p2p" ? await this.directLink() : null;
    const body = {
      ...params,
      stream: true,
      stream_options: { include_usage: true },
      ...(link ? { tabgrid: { ...params.tabgrid, peer_id: link.peerId } } : {}),
    };
    const res = await this.request("POST", shape.path, body, signal);
    const jobId = res.headers.get("x-tabgrid-job-id");
    return new Stream(
      this,
      shape,
      params,
      jobId,
      res,
      link && jobId ? link.feed(jobId) : null,
      0,
      signal,
    );
  }

  /** One HTTP call; non-2xx answers become typed errors, network failures APIConnectionError. */
  async request(
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.doFetch(`${this.baseURL}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw new APIUserAbortError();
      throw new APIConnectionError(`could not reach ${this.baseURL}: ${String(err)}`, {
        cause: err,
      });
    }
    if (res.ok) return res;
    let json: unknown = null;
    try {
      json = await res.json();
    } catch {
      // Not JSON: the status alone decides the error class.
    }
    const parsed = WireErrorSchema.safeParse(json);
    const retry = Number(res.headers.get("retry-after"));
    throw apiError(
      res.status,
      parsed.success ? parsed.data : null,
      res.headers.get("x-request-id"),
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  }

  /** @internal */
  arrived(path: Arrival["path"], offset: number, length: number): void {
    this.opts.onArrival?.({ path, offset, length, at: performance.now() });
  }

  get maxResumes(): number {
    return this.opts.maxResumes ?? 3;
  }

  get transport(): "relay" | "p2p" {
    return this.opts.transport ?? "relay";
  }

  /** The direct-path peer, opened once per client; null if p2p cannot start (relay only then). */
  private directLink(): Promise<DirectReceiver | null> {
    this.link ??= (async () => {
      const origin = new URL(this.baseURL, globalThis.location?.href).origin;
      const url = this.opts.p2pModuleUrl ?? `${origin}/sdk/p2p.js`;
      try {
        const mod = (await import(/* @vite-ignore */ url)) as {
          openDirectReceiver: OpenDirectReceiver;
        };
        return await mod.openDirectReceiver({
          origin,
          iceServers: this.opts.iceServers,
          openTimeoutMs: 5000,
          fetch: this.doFetch,
        });
      } catch {
        return null; // The relay carries every answer anyway.
      }
    })();
    return this.link;
  }
}

/**
 * One streamed answer: an async iterable of OpenAI chunks (chat or plain text, per its shape).
 * Reads the relay (resuming it when the connection drops) and, with p2p, the data channel; yields
 * merged text as soon as either has it.
 */
export class Stream<C extends ChunkHead = ChatCompletionChunk> implements AsyncIterable<C> {
  readonly controller = new AbortController();
  readonly stats: TransportStats;
  private readonly merger = new TextMerger();
  private readonly head: ChunkHead;
  private finish: { reason: "stop" | "length"; usage: ChatCompletionChunk["usage"] } | null = null;
  private relayFinish: "stop" | "length" | null = null;
  private directDone: Extract<DirectMessage, { type: "done" }> | null = null;
  private failure: unknown = null;
  private wake: (() => void) | null = null;
  private relayChars: number;

  constructor(
    private readonly client: Tabgrid,
    private readonly shape: AnswerShape<C, unknown>,
    private readonly params: CommonParams,
    readonly jobId: string | null,
    private readonly first: Response | null,
    private readonly feed: DirectFeed | null,
    after: number,
    signal?: AbortSignal,
  ) {
    this.relayChars = after;
    // The coordinator names chunks after the job; direct text may arrive before the first chunk.
    this.head = shape.head(jobId, params.model);
    this.stats = {
      transport: client.transport,
      directConnected: false,
      firstBy: this.merger.firstBy,
      resumes: 0,
      diverged: false,
    };
    if (signal?.aborted) this.controller.abort();
    else signal?.addEventListener("abort", () => this.controller.abort(), { once: true });
    this.controller.signal.addEventListener("abort", () => this.poke());
  }

  async *[Symbol.asyncIterator](): AsyncIterator<C> {
    void this.readRelay().catch((err: unknown) => {
      this.failure ??= err;
      this.poke();
    });
    this.feed?.listen((msg) => this.onDirect(msg));
    let opened = this.relayChars > 0;
    try {
      for (;;) {
        if (this.controller.signal.aborted) throw new APIUserAbortError();
        const text = this.merger.take();
        if (!opened && (text || this.finish)) {
          opened = true;
          const opening = this.shape.opening(this.head);
          if (opening) yield opening;
        }
        if (text) yield this.shape.piece(this.head, text, null);
        if (this.finish) {
          yield this.shape.piece(this.head, null, this.finish.reason);
          if (this.params.stream_options?.include_usage && this.finish.usage) {
            yield this.shape.usage(this.head, this.finish.usage);
          }
          return;
        }
        if (this.failure) throw this.failure;
        // The consumer may have aborted while it held a chunk: check before waiting.
        if (this.controller.signal.aborted) throw new APIUserAbortError();
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.stats.diverged = this.merger.diverged;
      this.stats.directConnected = this.feed?.connected ?? false;
      this.feed?.close();
      // After a `done` from the data channel the relay drains by itself (the job ends normally on
      // the coordinator); anything else (abort, error, the consumer stopped) stops it.
      if (!this.finish) this.controller.abort();
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private onDirect(msg: DirectMessage): void {
    if (msg.jobId !== this.jobId) return;
    if (msg.type === "delta") {
      this.client.arrived("direct", msg.offset, msg.text.length);
      this.merger.offer(msg.offset, msg.text, "direct");
    } else this.directDone = msg;
    this.settle();
  }

  /** Finished once either path says so and the merged text is complete. */
  private settle(): void {
    const d = this.directDone;
    if (!this.finish && d && this.merger.length >= d.chars) {
      this.finish = { reason: d.finishReason === "length" ? "length" : "stop", usage: d.usage };
    }
    this.poke();
  }

  /** The relay: the first response, then resumes after the characters it has delivered. */
  private async readRelay(): Promise<void> {
    let res = this.first;
    let resumes = 0;
    for (;;) {
      if (!res) {
        if (!this.jobId) throw new APIConnectionError("the stream dropped before it had a job id");
        const path = `/jobs/${encodeURIComponent(this.jobId)}/stream`;
        res = await this.client.request(
          "GET",
          `${path}?after=${this.relayChars}&include_usage=true`,
          undefined,
          this.controller.signal,
        );
      }
      if (await this.readBody(res)) return;
      if (this.controller.signal.aborted) return;
      if (++resumes > this.client.maxResumes) {
        throw new APIConnectionError(`the stream dropped ${resumes} times; giving up`);
      }
      this.stats.resumes = resumes;
      res = null;
      // A short pause lets a briefly unreachable coordinator come back.
      await new Promise((r) => setTimeout(r, 100 * resumes));
    }
  }

  /** Read one SSE body; true if it ended properly ([DONE] or an aborted read). */
  private async readBody(res: Response): Promise<boolean> {
    if (!res.body) return false;
    try {
      for await (const data of sseData(res.body)) {
        if (data === "[DONE]") {
          this.finish ??= { reason: this.relayFinish ?? "stop", usage: null };
          this.poke();
          return true;
        }
        let json: unknown;
        try {
          json = JSON.parse(data);
        } catch {
          throw new TabgridError("the coordinator sent an event that is not JSON");
        }
        const err = WireErrorSchema.safeParse(json);
        if (err.success) throw apiError(null, err.data, res.headers.get("x-request-id"));
        const parsed = this.shape.parseChunk(json);
        if (!parsed) throw new TabgridError("the coordinator sent an unexpected chunk");
        this.onRelayChunk(parsed);
      }
      return false;
    } catch (err) {
      if (err instanceof TabgridError) throw err;
      // Aborted by us or the caller: done. Otherwise the network dropped: resume.
      return this.controller.signal.aborted;
    }
  }

  private onRelayChunk(chunk: C): void {
    const { text, finish, usage } = this.shape.read(chunk);
    if (text) {
      this.client.arrived("relay", this.relayChars, text.length);
      this.merger.offer(this.relayChars, text, "relay");
      this.relayChars += text.length;
    }
    if (finish) this.relayFinish = finish;
    if (usage && !this.finish) this.finish = { reason: this.relayFinish ?? "stop", usage };
    this.settle();
  }
}

/** A whole answer from a stream (non-stream calls on the p2p transport, or cut off mid-body). */
async function collect<C extends ChunkHead, W>(
  shape: AnswerShape<C, W>,
  stream: Stream<C>,
): Promise<W> {
  let text = "";
  let head: ChunkHead | null = null;
  let finish: "stop" | "length" = "stop";
  let usage: ChatCompletionChunk["usage"] = null;
  for await (const chunk of stream) {
    const got = shape.read(chunk);
    head ??= chunk;
    text += got.text;
    if (got.finish === "length") finish = "length";
    usage = got.usage ?? usage;
  }
  if (!head) throw new TabgridError("the stream ended without any chunk");
  return shape.whole(
    { id: head.id, created: head.created, model: head.model },
    text,
    finish,
    usage,
  );
}
