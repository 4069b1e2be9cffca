import { WireErrorSchema } from "../../shared/protocol/sdk-wire.js";
import type { DirectMessage } from "../../shared/protocol/p2p-messages.js";
import { DIRECT_WINDOW, type DirectFeed } from "../direct/client-receiver-types.js";
import type { AnswerShape, ChunkHead } from "./answer-shape.js";
import { APIConnectionError, APIUserAbortError, TabgridError, apiError } from "./errors.js";
import { sseData } from "./sse.js";
import { TextMerger } from "./text-merger.js";
import type {
  Arrival,
  ChatCompletionChunk,
  CommonParams,
  DirectStop,
  TransportStats,
} from "./types.js";

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
 *
 * The relay (the coordinator's copy) is the record: only it ends the stream, with its finish
 * reason and usage. The data channel comes from a tab, which may have aborted (it lost a hedge
 * race, its socket dropped, its contributor pressed Stop) or may lie, so its text is taken only
 * while it stays within DIRECT_WINDOW of the relay's, agrees with it, and comes from one tab; its
 * `done` ends nothing. Otherwise the direct path is stopped for the job and the relay goes on
 * alone (`stats.directStopped` says why).
 */
export class Stream<C extends ChunkHead = ChatCompletionChunk> implements AsyncIterable<C> {
  readonly controller = new AbortController();
  readonly stats: TransportStats;
  private readonly merger: TextMerger;
  private readonly head: ChunkHead;
  private finish: { reason: "stop" | "length"; usage: ChatCompletionChunk["usage"] } | null = null;
  private relayFinish: "stop" | "length" | null = null;
  /** The data channel whose text this job takes (the first that sent any), and why it stopped. */
  private directChannel: number | null = null;
  private directStopped: DirectStop | null = null;
  private failure: unknown = null;
  private wake: (() => void) | null = null;
  /** Something happened since the consumer's loop last looked (it may have been holding a chunk). */
  private poked = false;
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
    this.merger = new TextMerger(this.relayChars);
    // The coordinator names chunks after the job; direct text may arrive before the first chunk.
    this.head = shape.head(jobId, params.model);
    this.stats = {
      transport: client.transport,
      directConnected: false,
      firstBy: this.merger.firstBy,
      resumes: 0,
      diverged: false,
      directStopped: null,
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
    this.feed?.listen((msg, channel) => this.onDirect(msg, channel));
    let opened = this.relayChars > 0;
    try {
      for (;;) {
        if (this.controller.signal.aborted) throw new APIUserAbortError();
        this.poked = false;
        // Read the end before the text: no text comes after the end, but the end may come (with
        // more text) while the consumer holds one of the chunks below; the next turn takes both.
        const finish = this.finish;
        const text = this.merger.take();
        if (!opened && (text || finish)) {
          opened = true;
          const opening = this.shape.opening(this.head);
          if (opening) yield opening;
        }
        if (text) yield this.shape.piece(this.head, text, null);
        if (finish) {
          yield this.shape.piece(this.head, null, finish.reason);
          if (this.params.stream_options?.include_usage && finish.usage) {
            yield this.shape.usage(this.head, finish.usage);
          }
          return;
        }
        if (this.failure) throw this.failure;
        // The consumer may have aborted while it held a chunk: check before waiting.
        if (this.controller.signal.aborted) throw new APIUserAbortError();
        if (!this.poked) await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.stats.diverged = this.merger.diverged;
      this.stats.directStopped = this.directStopped;
      this.stats.directConnected = this.feed?.connected ?? false;
      this.feed?.close();
      // After the relay's usage it drains [DONE] by itself; anything else (abort, error, the
      // consumer stopped) stops it.
      if (!this.finish) this.controller.abort();
    }
  }

  private poke(): void {
    this.poked = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private onDirect(msg: DirectMessage, channel: number): void {
    // A direct `done` is not the end of the answer, only the relay's is: a tab also sends one
    // after it aborted, and its `chars` and usage are its own word.
    if (msg.jobId !== this.jobId || msg.type !== "delta" || this.directStopped || this.finish)
      return;
    this.client.arrived("direct", msg.offset, msg.text.length);
    this.directChannel ??= channel;
    // A second tab sending text for the job: the coordinator raced it on two tabs (hedging) or
    // moved it (failover), and only the relay says which answer it kept.
    if (channel !== this.directChannel) this.stopDirect("two_tabs");
    else if (msg.offset + msg.text.length > this.relayChars + DIRECT_WINDOW.chars)
      this.stopDirect("too_far_ahead");
    else if (!this.merger.offer(msg.offset, msg.text, "direct")) this.stopDirect("too_far_ahead");
    else if (this.merger.diverged) this.stopDirect("diverged");
    this.poke();
  }

  /**
   * Take no more text from the data channel for this job. Its text that the relay has not
   * confirmed and the caller has not been handed yet is dropped: the relay's takes its place.
   */
  private stopDirect(why: DirectStop): void {
    this.directStopped ??= why;
    this.merger.dropParked("direct");
    this.merger.rewind(this.relayChars, "direct");
  }

  /** The relay's end: the answer is the relay's text, with its finish reason and usage. */
  private end(usage: ChatCompletionChunk["usage"]): void {
    if (this.finish) return;
    // Direct text past the relay's end was never part of the answer.
    if (this.merger.length > this.relayChars) {
      this.merger.diverged = true;
      this.stopDirect("diverged");
    }
    this.finish = { reason: this.relayFinish ?? "stop", usage };
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
          this.end(null);
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
    if (this.finish) return; // after the usage: only [DONE] is left
    const { text, finish, usage } = this.shape.read(chunk);
    if (text) {
      this.client.arrived("relay", this.relayChars, text.length);
      // Never parked (the merged text always reaches the relay's length), so always taken.
      this.merger.offer(this.relayChars, text, "relay");
      this.relayChars += text.length;
      if (this.merger.diverged && !this.directStopped) this.stopDirect("diverged");
    }
    if (finish) this.relayFinish = finish;
    if (usage) this.end(usage);
    this.poke();
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
