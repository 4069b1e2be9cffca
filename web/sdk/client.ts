import { WireErrorSchema } from "../../shared/protocol/sdk-wire.js";
import type { DirectReceiver, OpenDirectReceiver } from "../direct/client-receiver-types.js";
import { CHAT, TEXT, type AnswerShape, type ChunkHead } from "./answer-shape.js";
import { APIConnectionError, APIUserAbortError, TabgridError, apiError } from "./errors.js";
import { collect, Stream, type StreamClient } from "./stream.js";
import type {
  Arrival,
  ChatCompletionParams,
  ChatCompletions,
  CommonParams,
  CompletionParams,
  Completions,
  RequestOptions,
  TabgridOptions,
} from "./types.js";

/**
 * The browser client: `new Tabgrid({ baseURL }).chat.completions.create(...)` and the plain-text
 * `.completions.create(...)`, OpenAI-shaped (stream and non-stream, AbortSignal), with no
 * dependency beyond itself. Both share one code path (see answer-shape.ts). A dropped stream is
 * resumed by job id (`GET /v1/jobs/:id/stream?after=<chars received>`, see stream.ts), so the
 * caller sees one uninterrupted answer. With `transport: "p2p"` the serving tab also sends the text
 * over a WebRTC data channel (web/direct/client-receiver.ts, loaded only then); both paths are
 * merged by character offset, so if ICE never connects the relay carries the answer and nothing
 * changes for the caller.
 */
export class Tabgrid implements StreamClient {
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
      const resumed = new Stream({
        client: this,
        shape,
        params: withUsage,
        jobId,
        jobToken: res.headers.get("x-tabgrid-job-token"),
        first: null,
        direct: null,
        signal,
      });
      return collect(shape, resumed);
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
    // The receiver takes messages only for jobs it is told of; this one has no id until the
    // response names it, and the serving tab may start sending before that.
    const expected = link?.expect() ?? null;
    let res: Response;
    try {
      res = await this.request("POST", shape.path, body, signal);
    } catch (err) {
      expected?.cancel();
      throw err;
    }
    const jobId = res.headers.get("x-tabgrid-job-id");
    if (!jobId) expected?.cancel();
    return new Stream({
      client: this,
      shape,
      params,
      jobId,
      jobToken: res.headers.get("x-tabgrid-job-token"),
      first: res,
      direct: expected && jobId ? expected.feed(jobId) : null,
      signal,
    });
  }

  /** One HTTP call; non-2xx answers become typed errors, network failures APIConnectionError. */
  async request(
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
    extraHeaders: Record<string, string> = {},
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.doFetch(`${this.baseURL}${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}),
          ...extraHeaders,
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
