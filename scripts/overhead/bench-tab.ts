import { performance } from "node:perf_hooks";
import { WebSocketServer } from "ws";
import WebSocket from "ws";
import { PING_FRAME, PONG_FRAME } from "../../shared/protocol/node-messages.js";

/**
 * The tab code of bench:overhead: one fixed-timing token server, driven either by the coordinator
 * (a Node `ws` tab speaking the contributor protocol) or by a client talking to it directly over a
 * WebSocket (the baseline). Both paths run exactly `serveTokens`: job.accept, then one token per
 * delta frame — the first at once, the rest every `frameMs` — then job.done.
 */

export const MODEL = "overhead-bench-model";

/** What a job asks for, carried in its prompt so the coordinator path needs no side channel. */
export interface TokenPlan {
  tokens: number;
  frameMs: number;
}

export function planPrompt(index: number, plan: TokenPlan): string {
  return `overhead job ${index} tokens ${plan.tokens} every ${plan.frameMs}`;
}

export function parsePlan(prompt: string): TokenPlan | null {
  const m = /^overhead job \d+ tokens (\d+) every (\d+(?:\.\d+)?)$/.exec(prompt);
  return m ? { tokens: Number(m[1]), frameMs: Number(m[2]) } : null;
}

/** Token `i` of every answer: its index in the text lets a client count tokens in any chunking. */
export function tokenText(i: number): string {
  return `w${i} `;
}

interface Frames {
  accept(): void;
  delta(seq: number, offset: number, text: string): void;
  done(tokens: number): void;
}

/**
 * Serve one job at fixed timing; returns a stop function. Keeps the whole answer sent so far, so
 * it can resend from any character offset the coordinator acknowledges (job.resend).
 */
export class TokenServer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;
  private text = "";
  private stopped = false;

  constructor(
    private readonly plan: TokenPlan,
    private readonly frames: Frames,
  ) {}

  start(): void {
    this.frames.accept();
    this.tick(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The coordinator holds the answer only up to `offset`: send the rest again as one delta. */
  resend(offset: number): void {
    if (this.stopped || offset >= this.text.length) return;
    this.frames.delta(this.seq++, offset, this.text.slice(offset));
  }

  private tick(i: number): void {
    if (this.stopped) return;
    if (i >= this.plan.tokens) {
      this.stopped = true;
      this.frames.done(this.plan.tokens);
      return;
    }
    const piece = tokenText(i);
    this.frames.delta(this.seq++, this.text.length, piece);
    this.text += piece;
    // Fixed timing from the job's start, so a slow event loop does not slow the offered load.
    this.timer = setTimeout(() => this.tick(i + 1), this.plan.frameMs);
  }
}

/** A contributor tab on the coordinator: challenge → hello → welcome, pings, and jobs. */
export class CoordinatorTab {
  private ws!: WebSocket;
  private readonly serving = new Map<string, TokenServer>();
  /**
   * A job the coordinator queued behind the running one (protocol 5): it starts when that one
   * ends, as the product's tab does. The coordinator takes no frame of a queued job before it
   * runs, so serving it at once would be text the coordinator drops and a job that stalls.
   */
  private queued: { id: string; input: JobInput } | null = null;
  private pinger: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly wsUrl: string,
    private readonly protocol: number,
    private readonly index: number,
    /** Extra upgrade headers (bench:scale sets cf-connecting-ip, which places a tab on a shard). */
    private readonly headers: Record<string, string> = {},
  ) {}

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.wsUrl, { headers: this.headers });
      this.ws.on("error", reject);
      this.ws.on("message", (data) => {
        const raw = data.toString();
        if (raw === PONG_FRAME) return;
        const msg = JSON.parse(raw) as Record<string, unknown> & { type: string };
        switch (msg.type) {
          case "challenge":
            this.send({
              type: "hello",
              protocol: this.protocol,
              adapter: {
                vendor: "bench",
                architecture: "simulated",
                description: `overhead tab ${this.index}`,
                shaderF16: false,
                maxBufferSize: 268435456,
                maxStorageBufferBindingSize: 134217728,
              },
              models: [MODEL],
              state: "idle",
              agent: "bench-overhead-tab/1",
            });
            return;
          case "welcome": {
            const every = (msg.statusIntervalMs as number) / 2;
            this.pinger = setInterval(() => this.ws.send(PING_FRAME), every);
            resolve();
            return;
          }
          case "job.assign": {
            const job = msg.job as { id: string; input: JobInput };
            if (this.serving.size > 0) this.queued = job;
            else this.assign(job);
            return;
          }
          case "job.cancel":
            if (this.queued?.id === msg.jobId) {
              this.queued = null;
              return;
            }
            this.serving.get(msg.jobId as string)?.stop();
            if (this.serving.delete(msg.jobId as string)) this.startQueued();
            return;
          case "job.resend":
            this.serving.get(msg.jobId as string)?.resend(msg.offset as number);
            return;
        }
      });
    });
  }

  close(): void {
    if (this.pinger) clearInterval(this.pinger);
    for (const s of this.serving.values()) s.stop();
    this.ws.close(1000, "benchmark over");
  }

  private send(msg: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private assign(job: { id: string; input: JobInput }): void {
    const prompt = job.input.kind === "chat" ? (job.input.messages.at(-1)?.content ?? "") : "";
    const plan = parsePlan(prompt);
    const jobId = job.id;
    if (!plan) {
      this.send({
        type: "job.error",
        jobId,
        error: {
          code: "bad_request",
          message: `not a bench:overhead prompt: ${JSON.stringify(job.input).slice(0, 200)}`,
        },
      });
      return;
    }
    const withOffset = this.protocol >= 3;
    const server = new TokenServer(plan, {
      accept: () => this.send({ type: "job.accept", jobId }),
      delta: (seq, offset, text) =>
        this.send({ type: "job.delta", jobId, seq, text, ...(withOffset ? { offset } : {}) }),
      done: (tokens) => {
        this.serving.delete(jobId);
        this.send({
          type: "job.done",
          jobId,
          finishReason: "stop",
          usage: { prompt_tokens: 8, completion_tokens: tokens, total_tokens: 8 + tokens },
        });
        this.startQueued();
      },
    });
    this.serving.set(jobId, server);
    server.start();
  }

  /** The job queued behind the one that just ended, if any, starts now. */
  private startQueued(): void {
    const next = this.queued;
    this.queued = null;
    if (next) this.assign(next);
  }
}

type JobInput =
  | { kind: "chat"; messages: Array<{ role: string; content: string }> }
  | { kind: "completion"; prompt: string };

/**
 * The baseline: the same TokenServer behind a WebSocket server the client talks to directly. A
 * client sends `{"prompt": …}` and receives the same job.delta / job.done frames.
 */
export function startDirectTabs(): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => {
      const addr = wss.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      resolve({
        url: `ws://127.0.0.1:${port}`,
        close: () => new Promise((r) => wss.close(() => r())),
      });
    });
    wss.on("connection", (ws) => {
      ws.on("message", (data) => {
        const { prompt } = JSON.parse(data.toString()) as { prompt: string };
        const plan = parsePlan(prompt);
        if (!plan) return ws.close(1008, "not a bench prompt");
        const send = (msg: unknown) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
        };
        new TokenServer(plan, {
          accept: () => send({ type: "job.accept" }),
          delta: (seq, offset, text) => send({ type: "job.delta", seq, offset, text }),
          done: (tokens) => send({ type: "job.done", tokens }),
        }).start();
      });
    });
  });
}

/** Milliseconds since an arbitrary origin, shared by tabs and clients (one process, one clock). */
export const now = () => performance.now();
