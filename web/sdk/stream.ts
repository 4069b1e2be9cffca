import { WireErrorSchema } from "../../shared/protocol/sdk-wire.js";
import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";
import type { DirectFeed } from "../direct/client-receiver-types.js";
import type { AnswerShape, ChunkHead } from "./answer-shape.js";
import { APIConnectionError, APIUserAbortError, TabgridError, apiError } from "./errors.js";
import { sseData } from "./sse.js";
import { TextMerger } from "./text-merger.js";
import type { Arrival, ChatCompletionChunk, CommonParams, TransportStats } from "./types.js";

/** What a stream needs from its client (Tabgrid): HTTP calls and instrumentation. */
export interface StreamClient {
  request(
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
    headers?: Record<string, string>,
  ): Promise<Response>;
  arrived(path: Arrival["path"], offset: number, length: number): void;
  readonly maxResumes: number;
  readonly transport: "relay" | "p2p";
}

export interface StreamOptions<C extends ChunkHead> {
  client: StreamClient;
  shape: AnswerShape<C, unknown>;
  params: CommonParams;
  /** From the `x-tabgrid-job-id` header; without it a dropped stream cannot be resumed. */
  jobId: string | null;
  /** From `x-tabgrid-job-token`: the coordinator lets only the job's creator resume it. */
  jobToken?: string | null;
  /** The response that opened the stream; null to start by resuming the job (a cut-off body). */
  first: Response | null;
  /** This job's messages on the direct path, when the caller asked for it. */
  direct: DirectFeed | null;
  /** Characters of the answer the caller already has (default 0). */
  after?: number;
  signal?: AbortSignal | undefined;
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

  readonly jobId: string | null;
  private readonly jobToken: string | null;
  private readonly client: StreamClient;
  private readonly shape: AnswerShape<C, unknown>;
  private readonly params: CommonParams;
  private readonly first: Response | null;
  private readonly feed: DirectFeed | null;

  constructor(opts: StreamOptions<C>) {
    const { client, shape, params, jobId, signal } = opts;
    this.client = client;
    this.shape = shape;
    this.params = params;
    this.jobId = jobId;
    this.jobToken = opts.jobToken ?? null;
    this.first = opts.first;
    this.feed = opts.direct;
    this.relayChars = opts.after ?? 0;
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
          this.jobToken ? { "x-tabgrid-job-token": this.jobToken } : {},
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
export async function collect<C extends ChunkHead, W>(
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
