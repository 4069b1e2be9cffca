import {
  CoordinatorMessageSchema,
  PING_FRAME,
  PONG_FRAME,
  parseFrame,
  type CoordinatorMessage,
} from "../../shared/protocol/node-messages.js";
import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  challengeText,
  nodeIdFromPublicKey,
  toBase64url,
} from "../../shared/protocol/node-identity.js";
import type { JobSpec, Usage } from "../../shared/protocol/job.js";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";

/**
 * One simulated contributor tab's connection, speaking the real protocol, for tests and
 * benchmarks alike: the workerd tests drive it step by step (test/workerd/scripted-tab.ts, over
 * workerd's WebSocket) and the churn benchmark runs many on their own (scripts/churn/sim-tab.ts,
 * over Node's `ws`). The socket is injected; the runtime's adapter feeds received frames to
 * `receive()` and the close to `socketClosed()`. (Browser tests run the real page instead.)
 */

/** What the tab needs of a WebSocket. */
export interface TabSocket {
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Drop the connection without a close frame, where the runtime can (Node `ws`: terminate). */
  terminate?(): void;
  /** The WebSocket readyState: 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
}

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  shaderF16: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface HelloOptions {
  models: string[];
  /** Sign the challenge with these keys (a returning tab); without, the coordinator mints an id. */
  keys?: CryptoKeyPair;
  adapter?: Partial<AdapterInfo>;
  agent?: string;
  /**
   * Protocol version to state. By default the last one before QUEUE_SINCE_PROTOCOL: a scripted tab
   * answers only what its test scripts, so it is sent jobs queued behind a running one only when
   * its test asks for that.
   */
  protocol?: number;
}

/** The adapter a scripted tab reports unless told otherwise (SwiftShader-like, no f16). */
export const SCRIPTED_ADAPTER: AdapterInfo = {
  vendor: "google",
  architecture: "swiftshader",
  description: "scripted",
  shaderF16: false,
  maxBufferSize: 268435456,
  maxStorageBufferBindingSize: 134217728,
};

type MessageOf<T extends CoordinatorMessage["type"]> = Extract<CoordinatorMessage, { type: T }>;

export class ProtocolTab {
  /** Messages received and not yet taken by `next()` or a listener. */
  readonly received: CoordinatorMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  nodeId = "";
  /** From the welcome: tabs ping every half interval. */
  statusIntervalMs = 0;
  private waiters: Array<{ type: string; resolve: (m: CoordinatorMessage) => void }> = [];
  private listener: ((msg: CoordinatorMessage) => void) | undefined;
  private resolveClosed!: (c: { code: number; reason: string }) => void;
  private pinger: ReturnType<typeof setInterval> | undefined;
  private silent = false;

  constructor(
    readonly socket: TabSocket,
    private readonly opts: {
      /** A frame that is not a valid coordinator message (default: ignored). */
      onInvalid?: (reason: string, raw: string) => void;
    } = {},
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** Feed one frame the socket received. */
  receive(raw: string): void {
    if (raw === PONG_FRAME) return;
    const parsed = parseFrame(CoordinatorMessageSchema, raw);
    if (!parsed.ok) {
      this.opts.onInvalid?.(parsed.reason, raw);
      return;
    }
    const msg = parsed.msg;
    const matching = this.waiters.filter((w) => w.type === msg.type);
    if (matching.length) {
      this.waiters = this.waiters.filter((w) => w.type !== msg.type);
      for (const w of matching) w.resolve(msg);
    } else if (this.listener) {
      this.listener(msg);
    } else {
      this.received.push(msg);
    }
  }

  /** Tell the tab its socket closed. */
  socketClosed(code: number, reason: string): void {
    this.stopPinging();
    this.resolveClosed({ code, reason });
  }

  get isClosed(): boolean {
    return this.socket.readyState >= 2;
  }

  send(msg: unknown): void {
    if (this.silent) return;
    this.socket.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  /** The next message of a type, including one that already arrived and was not taken. */
  next<T extends CoordinatorMessage["type"]>(type: T): Promise<MessageOf<T>> {
    const index = this.received.findIndex((m) => m.type === type);
    if (index >= 0) {
      const [msg] = this.received.splice(index, 1);
      return Promise.resolve(msg as MessageOf<T>);
    }
    return new Promise((resolve) =>
      this.waiters.push({ type, resolve: (m) => resolve(m as MessageOf<T>) }),
    );
  }

  /** Hand every message (those waiting first) to `fn` from now on, unless `next()` waits for it. */
  listen(fn: (msg: CoordinatorMessage) => void): void {
    this.listener = fn;
    for (const msg of this.received.splice(0)) fn(msg);
  }

  /** Answer the challenge with hello and wait for the welcome. */
  async handshake(hello: HelloOptions): Promise<MessageOf<"welcome">> {
    const challenge = await this.next("challenge");
    this.send({
      type: "hello",
      protocol: hello.protocol ?? QUEUE_SINCE_PROTOCOL - 1,
      ...(hello.keys ? await identityProof(hello.keys, challenge.nonce) : {}),
      adapter: { ...SCRIPTED_ADAPTER, ...hello.adapter },
      models: hello.models,
      state: "idle",
      agent: hello.agent ?? "scripted-tab/1",
    });
    const welcome = await this.next("welcome");
    this.nodeId = welcome.nodeId;
    this.statusIntervalMs = welcome.statusIntervalMs;
    return welcome;
  }

  /** Send the keep-alive ping every `everyMs` while the socket is open and the tab not silent. */
  startPinging(everyMs: number): void {
    this.stopPinging();
    this.pinger = setInterval(() => {
      if (!this.silent && this.socket.readyState === 1) this.socket.send(PING_FRAME);
    }, everyMs);
  }

  stopPinging(): void {
    if (this.pinger !== undefined) clearInterval(this.pinger);
    this.pinger = undefined;
  }

  /** Stop sending anything, pings included, with the socket left open (a hung tab). */
  goSilent(): void {
    this.silent = true;
    this.stopPinging();
  }

  get isSilent(): boolean {
    return this.silent;
  }

  /** The next assigned job, or null if the socket closes first. */
  nextJobOrClose(): Promise<JobSpec | null> {
    return Promise.race([this.nextJob(), this.closed.then(() => null)]);
  }

  async nextJob(): Promise<JobSpec> {
    return (await this.next("job.assign")).job;
  }

  accept(job: { id: string }): void {
    this.send({ type: "job.accept", jobId: job.id });
  }

  delta(job: { id: string }, seq: number, text: string): void {
    this.send({ type: "job.delta", jobId: job.id, seq, text });
  }

  /** Answer a job with these pieces of text, then done. */
  serve(job: { id: string }, pieces: string[], usage?: Partial<Usage>): void {
    this.accept(job);
    pieces.forEach((text, seq) => this.delta(job, seq, text));
    this.done(job, "stop", usage);
  }

  /**
   * `job.done` with this usage; after a failover, `continuedTokens`: what the tab says the
   * delivered text was, for its tokenizer.
   */
  done(
    job: { id: string },
    finishReason: "stop" | "length" | "abort",
    usage?: Partial<Usage>,
    continuedTokens?: number,
  ): void {
    const u = { prompt_tokens: 5, completion_tokens: 3, ...usage };
    this.send({
      type: "job.done",
      jobId: job.id,
      finishReason,
      usage: { ...u, total_tokens: u.prompt_tokens + u.completion_tokens },
      ...(continuedTokens !== undefined ? { continuedTokens } : {}),
    });
  }

  /** Drop the connection abruptly where the runtime can (no close frame), else close it. */
  drop(): void {
    if (this.socket.terminate) this.socket.terminate();
    else this.close(1000, "dropped");
  }

  close(code = 1000, reason = "test done"): void {
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closed.
    }
  }
}

export async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(IDENTITY_ALGORITHM, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
}

/** The `nodeId` + `identity` fields of a hello that proves ownership of `keys`. */
export async function identityProof(keys: CryptoKeyPair, nonce: string) {
  const spki = new Uint8Array(
    (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer,
  );
  const signature = await crypto.subtle.sign(
    SIGNATURE_ALGORITHM,
    keys.privateKey,
    new TextEncoder().encode(challengeText(nonce)),
  );
  return {
    nodeId: await nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d)),
    identity: { publicKey: toBase64url(spki), signature: toBase64url(new Uint8Array(signature)) },
  };
}
